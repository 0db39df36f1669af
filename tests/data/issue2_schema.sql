-- The archive schema as issue-2 code created it (commit 0529e6e), before migrations existed.
-- Frozen: tests build 'old' databases from it.
CREATE TABLE articles (
	id INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	post_id TEXT, 
	slug TEXT, 
	title TEXT NOT NULL, 
	subtitle TEXT, 
	type TEXT, 
	section TEXT, 
	published_at TEXT, 
	published_at_raw TEXT, 
	modified_at TEXT, 
	modified_at_raw TEXT, 
	image_url TEXT, 
	image_caption TEXT, 
	image_credit TEXT, 
	image_alt TEXT, 
	body_text TEXT, 
	body_html TEXT, 
	word_count INTEGER, 
	language TEXT, 
	content_hash TEXT NOT NULL, 
	lists_hash TEXT, 
	first_seen_at TEXT NOT NULL, 
	last_seen_at TEXT NOT NULL, 
	changed_at TEXT NOT NULL, 
	removed_at TEXT, 
	CONSTRAINT pk_articles PRIMARY KEY (id), 
	CONSTRAINT uq_articles_url UNIQUE (url)
);
CREATE INDEX ix_articles_published_at ON articles (published_at);
CREATE INDEX ix_articles_post_id ON articles (post_id);
CREATE TABLE authors (
	id INTEGER NOT NULL, 
	name TEXT NOT NULL, 
	url TEXT, 
	CONSTRAINT pk_authors PRIMARY KEY (id), 
	CONSTRAINT uq_authors_name UNIQUE (name)
);
CREATE TABLE tags (
	id INTEGER NOT NULL, 
	name TEXT NOT NULL, 
	url TEXT, 
	CONSTRAINT pk_tags PRIMARY KEY (id), 
	CONSTRAINT uq_tags_name UNIQUE (name)
);
CREATE TABLE crawl_runs (
	id INTEGER NOT NULL, 
	spider TEXT NOT NULL, 
	args TEXT, 
	started_at TEXT NOT NULL, 
	finished_at TEXT, 
	status TEXT NOT NULL, 
	finish_reason TEXT, 
	exit_code INTEGER, 
	stats TEXT, 
	pid INTEGER, 
	CONSTRAINT pk_crawl_runs PRIMARY KEY (id), 
	CONSTRAINT ck_crawl_runs_status CHECK (status IN ('running', 'finished', 'interrupted', 'failed'))
);
CREATE TABLE article_authors (
	id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	author_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	CONSTRAINT pk_article_authors PRIMARY KEY (id), 
	CONSTRAINT uq_article_authors_article_id_author_id UNIQUE (article_id, author_id), 
	CONSTRAINT fk_article_authors_article_id_articles FOREIGN KEY(article_id) REFERENCES articles (id) ON DELETE CASCADE, 
	CONSTRAINT fk_article_authors_author_id_authors FOREIGN KEY(author_id) REFERENCES authors (id) ON DELETE CASCADE
);
CREATE INDEX ix_article_authors_author_id ON article_authors (author_id);
CREATE TABLE article_tags (
	id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	tag_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	CONSTRAINT pk_article_tags PRIMARY KEY (id), 
	CONSTRAINT uq_article_tags_article_id_tag_id UNIQUE (article_id, tag_id), 
	CONSTRAINT fk_article_tags_article_id_articles FOREIGN KEY(article_id) REFERENCES articles (id) ON DELETE CASCADE, 
	CONSTRAINT fk_article_tags_tag_id_tags FOREIGN KEY(tag_id) REFERENCES tags (id) ON DELETE CASCADE
);
CREATE INDEX ix_article_tags_tag_id ON article_tags (tag_id);
CREATE TABLE article_images (
	id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	caption TEXT, 
	credit TEXT, 
	alt TEXT, 
	CONSTRAINT pk_article_images PRIMARY KEY (id), 
	CONSTRAINT uq_article_images_article_id_position UNIQUE (article_id, position), 
	CONSTRAINT fk_article_images_article_id_articles FOREIGN KEY(article_id) REFERENCES articles (id) ON DELETE CASCADE
);
CREATE TABLE teasers (
	id INTEGER NOT NULL, 
	page_url TEXT NOT NULL, 
	page_article_id INTEGER, 
	position INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	article_id INTEGER, 
	post_id TEXT, 
	title TEXT NOT NULL, 
	section TEXT, 
	authors TEXT, 
	published_at TEXT, 
	published_at_raw TEXT, 
	excerpt TEXT, 
	has_more BOOLEAN NOT NULL, 
	image_url TEXT, 
	image_caption TEXT, 
	first_seen_at TEXT NOT NULL, 
	last_seen_at TEXT NOT NULL, 
	CONSTRAINT pk_teasers PRIMARY KEY (id), 
	CONSTRAINT uq_teasers_page_url_url UNIQUE (page_url, url), 
	CONSTRAINT fk_teasers_page_article_id_articles FOREIGN KEY(page_article_id) REFERENCES articles (id) ON DELETE SET NULL, 
	CONSTRAINT fk_teasers_article_id_articles FOREIGN KEY(article_id) REFERENCES articles (id) ON DELETE SET NULL
);
CREATE INDEX ix_teasers_page_article_id ON teasers (page_article_id);
CREATE INDEX ix_teasers_article_id ON teasers (article_id);
CREATE INDEX ix_teasers_url ON teasers (url);
CREATE INDEX ix_teasers_post_id ON teasers (post_id);
CREATE TABLE captures (
	id INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	final_url TEXT, 
	requested_url TEXT, 
	status INTEGER NOT NULL, 
	fetched_at TEXT NOT NULL, 
	content_type TEXT, 
	headers TEXT, 
	sha256 TEXT NOT NULL, 
	size INTEGER NOT NULL, 
	compression TEXT NOT NULL, 
	body BLOB NOT NULL, 
	run_id INTEGER, 
	CONSTRAINT pk_captures PRIMARY KEY (id), 
	CONSTRAINT uq_captures_url_sha256 UNIQUE (url, sha256), 
	CONSTRAINT ck_captures_compression CHECK (compression IN ('zstd', 'zlib')), 
	CONSTRAINT fk_captures_run_id_crawl_runs FOREIGN KEY(run_id) REFERENCES crawl_runs (id) ON DELETE SET NULL
);
CREATE INDEX ix_captures_run_id ON captures (run_id);
CREATE TABLE revisions (
	id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	captured_at TEXT NOT NULL, 
	content_hash TEXT NOT NULL, 
	title TEXT NOT NULL, 
	subtitle TEXT, 
	body_text TEXT, 
	body_html TEXT, 
	authors TEXT, 
	capture_id INTEGER, 
	CONSTRAINT pk_revisions PRIMARY KEY (id), 
	CONSTRAINT fk_revisions_article_id_articles FOREIGN KEY(article_id) REFERENCES articles (id) ON DELETE CASCADE, 
	CONSTRAINT fk_revisions_capture_id_captures FOREIGN KEY(capture_id) REFERENCES captures (id) ON DELETE SET NULL
);
CREATE INDEX ix_revisions_capture_id ON revisions (capture_id);
CREATE INDEX ix_revisions_article_id ON revisions (article_id);
CREATE VIRTUAL TABLE articles_fts USING fts5(title, subtitle, body_text, content='articles', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER articles_fts_ai AFTER INSERT ON articles BEGIN INSERT INTO articles_fts(rowid, title, subtitle, body_text) VALUES (new.id, new.title, new.subtitle, new.body_text); END;
CREATE TRIGGER articles_fts_ad AFTER DELETE ON articles BEGIN INSERT INTO articles_fts(articles_fts, rowid, title, subtitle, body_text) VALUES ('delete', old.id, old.title, old.subtitle, old.body_text); END;
CREATE TRIGGER articles_fts_au AFTER UPDATE OF title, subtitle, body_text ON articles BEGIN INSERT INTO articles_fts(articles_fts, rowid, title, subtitle, body_text) VALUES ('delete', old.id, old.title, old.subtitle, old.body_text); INSERT INTO articles_fts(rowid, title, subtitle, body_text) VALUES (new.id, new.title, new.subtitle, new.body_text); END;
