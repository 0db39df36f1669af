"""The RebelMouse parser on real-shaped pages: golden files, seed text, fallbacks, sanitising."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from rsarchive.extract import parse_page
from rsarchive.extract.text import html_text, sanitize_html
from rsarchive.urls import normalize_url

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = sorted(p.parent.name for p in FIXTURES.glob("*/meta.json"))
sys.path.insert(0, str(FIXTURES))
from regen import expected_for  # noqa: E402


def meta(case: str) -> dict:
    return json.loads((FIXTURES / case / "meta.json").read_text(encoding="utf-8"))


def parsed(case: str) -> dict:
    return expected_for(FIXTURES / case)


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_golden_output_is_unchanged(case: str) -> None:
    """Every field of every case, exactly; regenerate with fixtures/regen.py after review."""
    expected = json.loads((FIXTURES / case / "expected.json").read_text(encoding="utf-8"))
    assert parsed(case) == expected


@pytest.mark.parametrize("case", CASES)
def test_matches_the_fixture_authors_checklist(case: str) -> None:
    """The hand-written `expect` notes of each fixture, independent of the golden files."""
    x = meta(case)["expect"]
    got = parsed(case)
    article = got["article"]
    if x.get("article", "absent") is None:
        assert article is None
    if "teaser_titles" in x:
        assert [t["title"] for t in got["teasers"]] == x["teaser_titles"]
    for teaser, want in zip(got["teasers"], x.get("teasers", []), strict=False):
        assert teaser["position"] == want["position"]
        for key in ("post_id", "title", "section", "published_at", "has_more"):
            if key in want:
                assert teaser[key] == want[key], (teaser["position"], key)
        assert teaser["url"] == normalize_url(want["url"])
        if "authors" in want:
            assert [a["name"] for a in teaser["authors"]] == want["authors"]
        if "image_caption" in want:
            assert (teaser["image"] or {}).get("caption") == want["image_caption"]
        if "image_url" in want:
            assert (teaser["image"] or {}).get("url") == want["image_url"], teaser["position"]
        assert teaser["excerpt"].startswith(want.get("excerpt_starts_with", ""))
        assert teaser["excerpt"].endswith(want.get("excerpt_ends_with", ""))
        for chrome in ("keep reading", "Show less", "Continue Reading"):
            assert chrome not in teaser["excerpt"]
    for key in ("drift", "warnings"):
        if key in x:
            assert got[key] == x[key], key
    if article is None:
        return
    assert article["extractor"] == x.get("extractor", "rebelmouse")
    if "title" in x:
        assert (article["title"] or None) == x["title"]
    for key in ("subtitle", "type", "section", "post_id", "published_at", "modified_at"):
        if key in x:
            assert article[key] == x[key], key
    if "canonical_url" in x:
        assert article["url"] == normalize_url(x["canonical_url"])
    if "authors" in x:
        assert [a["name"] for a in article["authors"]] == x["authors"]
    if "author_urls" in x:
        assert [a["url"] for a in article["authors"]] == [
            normalize_url(u) for u in x["author_urls"]
        ]
    if x.get("tags"):
        assert [t["name"] for t in article["tags"]] == x["tags"]
    if "tag_urls" in x:
        assert [t["url"] for t in article["tags"]] == [normalize_url(u) for u in x["tag_urls"]]
    if "image_caption" in x:
        assert (article["image"] or {}).get("caption") == x["image_caption"]
        assert (article["image"] or {}).get("credit") == x.get("image_credit")
    if "inline_images" in x:
        assert len(article["images"]) == x["inline_images"]
    for text in x.get("body_must_contain", []):
        assert text in article["body_text"]
    for text in x.get("body_must_not_contain", []):
        assert text not in article["body_text"]
    for text in x.get("body_html_must_contain", []):
        assert text in article["body_html"]
    for text in x.get("body_html_must_not_contain", []):
        assert text not in article["body_html"]
    if "inline_image_list" in x:
        assert [
            {k: i[k] for k in ("url", "alt", "caption", "credit")} for i in article["images"]
        ] == x["inline_image_list"]


def test_seed_page_text_is_the_article_then_exactly_three_teasers() -> None:
    """The seed page's reader-visible text: body verbatim, teasers' visible paragraphs verbatim."""
    paras = [norm(p) for p in (FIXTURES / "seed" / "seed-page.txt").read_text().split("\n\n")]
    paras = [p for p in paras if p]
    got = parsed("seed")
    body = [norm(p) for p in got["article"]["body_text"].split("\n\n")]
    start = paras.index(body[0])
    assert paras[start : start + len(body)] == body
    assert body[0].startswith("Update 5/19 10 p.m. ET")
    assert body[-1].endswith("completely unprofitable for both countries.")
    assert [t["title"] for t in got["teasers"]] == [
        "Israel-Hamas deal: Talking vs. bombing, works",
        "US strikes in Iraq show risk of escalation to wider war",
        "JFK: A man on the brink of revelation",
    ]
    for teaser in got["teasers"]:
        excerpt = [norm(p) for p in teaser["excerpt"].split("\n\n")]
        i = paras.index(excerpt[0])
        assert paras[i : i + len(excerpt)] == excerpt
        # What the reader sees next is the toggle: the excerpt is all the visible text.
        assert paras[i + len(excerpt)].startswith("keep readingShow less")
        assert teaser["has_more"] is True
    # No teaser or chrome text leaks into the main article.
    text = got["article"]["body_text"]
    for leak in ("Israel-Hamas", "Follow us on social", "Latest", "keep reading", "Europe\n"):
        assert leak not in text


def test_poll_and_sidebar_posts_are_not_teasers() -> None:
    got = parsed("polls-sidebar")
    assert len(got["teasers"]) == 4
    html = (FIXTURES / "polls-sidebar" / "page.html").read_text(encoding="utf-8")
    all_posts = len(re.findall(r"<article[^>]+elid=", html))
    assert all_posts > 1 + 4  # the page has more posts than the article and its feed


def test_tag_listing_has_teasers_and_no_article() -> None:
    got = parsed("tag-listing")
    assert got["article"] is None
    assert len(got["teasers"]) == 5
    assert [t["position"] for t in got["teasers"]] == [0, 1, 2, 3, 4]


def test_empty_feed_gives_an_article_and_no_teasers() -> None:
    got = parsed("empty-feed")
    assert got["article"]["title"]
    assert got["teasers"] == []


def test_fallbacks_are_reported_as_layout_drift() -> None:
    got = parsed("drift-headline")
    assert {"headline", "section"} <= set(got["drift"])
    assert got["article"]["title"] == meta("drift-headline")["expect"]["title"]
    assert parsed("seed")["drift"] == []


def test_post_found_through_bootstrap_data_when_the_post_block_is_renamed() -> None:
    """A template change that renames the current_post block: the bootstrap post id still finds
    the post, and the fallback is reported."""
    html = (FIXTURES / "seed" / "page.html").read_text(encoding="utf-8")
    html = html.replace('data-source="current_post"', 'data-source="current_story"')
    got = parse_page(html, meta("seed")["url"])
    assert "post_block" in got.drift
    assert got.article.post_id == "2652879530"
    assert got.article.title == "What to make of the Blinken-Lavrov 'showdown' in Iceland"
    assert "Reykjavik" in got.article.body_text
    assert len(got.teasers) == 3


def test_invalid_jsonld_falls_back_to_the_dom() -> None:
    got = parsed("invalid-jsonld")
    assert "jsonld_invalid" in got["warnings"]
    assert got["article"]["authors"][0]["name"] == "Colin Brandt"
    assert got["article"]["published_at"] == "2024-03-15T02:30:00Z"


def test_page_without_headline_yields_an_empty_title_not_an_invented_one() -> None:
    got = parsed("no-headline")
    assert got["article"]["title"] == ""
    assert len(got["teasers"]) == 1


def test_wrong_charset_header_is_rescued_when_the_bytes_are_utf8() -> None:
    m = meta("wrong-charset")
    assert "iso-8859-1" in m["headers"]["Content-Type"]
    got = parsed("wrong-charset")
    assert got["article"]["title"] == m["expect"]["title"]
    assert got["article"]["authors"][0]["name"] == "José Martí-Ruiz"


def test_canonical_on_the_www_host_is_the_same_site_and_offsite_ones_are_ignored() -> None:
    html = (FIXTURES / "seed" / "page.html").read_text(encoding="utf-8")
    url = "https://www.responsiblestatecraft.org/2021/05/19/blinken-lavrov-iceland/?utm_source=x"
    got = parse_page(html, url)
    assert got.article.url == normalize_url(meta("seed")["url"])
    assert "canonical_offsite" not in got.warnings
    elsewhere = html.replace(
        'rel="canonical" href="https://responsiblestatecraft.org/',
        'rel="canonical" href="https://mirror.example/',
    )
    assert elsewhere != html
    got = parse_page(elsewhere, url)
    assert "canonical_offsite" in got.warnings
    assert got.article.url.startswith("https://")


def test_whitespace_is_collapsed_and_typography_kept() -> None:
    from rsarchive.extract.text import normalize_space

    assert normalize_space(" a\u00a0 b\u200bc\u3000\u2009d\n\te  ") == "a b c d e"
    assert normalize_space("“Kyiv’s” — café…") == "“Kyiv’s” — café…"


def test_real_latin1_page_is_not_misread_as_utf8() -> None:
    body = "<html><body><p>Caf\u00e9 \u00e0 Paris</p></body></html>".encode("latin-1")
    assert "Café à Paris" in html_text(body, "text/html; charset=iso-8859-1")


def test_truncated_page_keeps_what_arrived() -> None:
    got = parsed("truncated")
    assert got["article"]["title"]
    assert got["article"]["body_text"]


def test_inline_images_carry_caption_and_credit_outside_body_text() -> None:
    article = parsed("inline-media")["article"]
    want = meta("inline-media")["expect"]["inline_image_list"]
    assert [
        {"url": i["url"], "alt": i["alt"], "caption": i["caption"], "credit": i["credit"]}
        for i in article["images"]
    ] == want
    for image in want:
        assert image["caption"] not in article["body_text"]
        assert image["credit"] not in article["body_text"]
        assert image["caption"] in article["body_html"]  # the HTML keeps the figure whole
    assert "A multiyear contract is a promise to keep buying" in article["body_text"]  # pull quote


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<p onclick="alert(1)">x</p>',
    '<iframe src="https://evil.example/"></iframe>',
    '<object data="x.swf"><param name="a" value="b"></object>',
    '<embed src="x.swf">',
    '<svg onload="alert(1)"><script>alert(1)</script></svg>',
    '<style>body{background:url("javascript:alert(1)")}</style>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<form action="https://evil.example/"><input name="q"></form>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<scr<script>ipt>alert(1)</script>",
]


@pytest.mark.parametrize("markup", HOSTILE)
def test_sanitiser_leaves_nothing_executable(markup: str) -> None:
    clean = sanitize_html(f"<p>before</p>{markup}<p>after</p>").lower()
    for bad in (
        "<script",
        "<iframe",
        "<object",
        "<embed",
        "<svg",
        "<style",
        "<form",
        "javascript:",
        "onerror",
        "onclick",
        "onload",
        "data:text/html",
    ):
        assert bad not in clean
    assert "before" in clean and "after" in clean


def test_hostile_markup_inside_a_real_body_is_removed() -> None:
    html = parsed("inline-media")["article"]["body_html"].lower()
    for bad in ("<script", "<iframe", "<object", "javascript:", "onerror", "onclick", "alert("):
        assert bad not in html
    assert '<a href="https://www.gao.gov/products/gao-24-106442"' in html


def test_parser_accepts_text_bytes_and_selectors_alike() -> None:
    from parsel import Selector

    raw = (FIXTURES / "seed" / "page.html").read_bytes()
    url = meta("seed")["url"]
    a = asdict(parse_page(raw, url))
    b = asdict(parse_page(raw.decode("utf-8"), url))
    c = asdict(parse_page(Selector(text=raw.decode("utf-8")), url))
    assert a == b == c


def test_parser_does_not_modify_the_shared_tree() -> None:
    from lxml import etree
    from parsel import Selector

    sel = Selector(text=(FIXTURES / "inline-media" / "page.html").read_text(encoding="utf-8"))
    before = etree.tostring(sel.root)
    parse_page(sel, meta("inline-media")["url"])
    assert etree.tostring(sel.root) == before


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html>",
        "not html at all",
        "<div class='posts-custom' data-source='current_post'><article elid='1'>",
        "<div class='posts-custom' data-source='current_page'><article elid='2'><h2>",
        "\x00\x01\x02",
    ],
)
def test_broken_html_never_raises(html: str) -> None:
    page = parse_page(html, "https://responsiblestatecraft.org/x/")
    assert page.teasers == []


# -- RebelMouse pages as they are in the wild (issue 11) ---------------------------------------


def html_of(case: str) -> str:
    return (FIXTURES / case / "page.html").read_text(encoding="utf-8")


def test_jsonld_in_cdata_is_read_and_not_reported_invalid() -> None:
    got = parsed("cdata-jsonld-tags")
    assert "jsonld_invalid" not in got["warnings"]
    # Only the JSON-LD has the time of day: the visible date is the day alone.
    assert got["article"]["published_at"] == "2024-05-20T14:15:00Z"
    # The commented form some templates use: //<![CDATA[ ... //]]>
    html = (
        html_of("cdata-jsonld-tags")
        .replace("<![CDATA[ ", "//<![CDATA[\n")
        .replace(" ]]>", "\n//]]>")
    )
    page = parse_page(html, meta("cdata-jsonld-tags")["url"])
    assert page.warnings == [] and page.article.published_at == "2024-05-20T14:15:00Z"


def test_tags_come_from_the_widget_classes_when_no_keywords_remain() -> None:
    html = re.sub(r'<meta name="keywords"[^>]*>', "", html_of("cdata-jsonld-tags"))
    html = html.replace('"keywords": "Niger, Sahel, US military, AFRICOM"', '"x": ""')
    page = parse_page(html, meta("cdata-jsonld-tags")["url"])
    assert [(t.name, t.url) for t in page.article.tags] == [
        ("niger", "https://responsiblestatecraft.org/tag/niger"),
        ("sahel", "https://responsiblestatecraft.org/tag/sahel"),
        ("us military", "https://responsiblestatecraft.org/tag/us-military"),
        ("africom", "https://responsiblestatecraft.org/tag/africom"),
    ]
    assert "tags" in page.drift


def test_promo_and_ad_chrome_is_recognised_by_what_it_is_not_by_class() -> None:
    url = "https://responsiblestatecraft.org/x-1"

    def body(inner: str) -> str:
        page = (
            "<html><body><div class='posts-custom' data-source='current_post'>"
            "<article elid='1'><h1 class='widget__headline'><span class='widget__headline-text'>"
            f"T</span></h1><div class='body-description'>{inner}</div></article></div>"
            "</body></html>"
        )
        return parse_page(page, url).article.body_text

    keep = [
        # A promo lead-in that cites another site is a citation, not a promo.
        "<p>Related: <a href='https://www.un.org/report'>the UN report</a></p>",
        # Prose that mentions an advertisement or starts with "Related".
        "<p>Related to this, the advertisement campaign ran for weeks.</p>",
        "<p>Advertisement spending rose.</p>",
        # A long paragraph about newsletters with a link is argument, not a sign-up box.
        "<p>" + "word " * 45 + "subscribe to the <a href='/n'>newsletter</a></p>",
    ]
    for markup in keep:
        assert body(markup), markup
    drop = [
        "<p><strong>ALSO READ: <a href='/other-post-2'>Other headline</a></strong></p>",
        "<p>Read more &mdash; <a href='https://www.responsiblestatecraft.org/y/'>Y</a></p>",
        "<div style='color:#ccc'>ADVERTISEMENT</div>",
        "<div><ins class='adsbygoogle' data-ad-slot='1'></ins></div>",
        "<div>Story continues below advertisement</div>",
        "<div><p>Stay informed.</p><form><input type='email'><button>Go</button></form></div>",
        "<p>Sign up for our newsletter <a href='/newsletter/'>here</a>.</p>",
    ]
    for markup in drop:
        assert body(f"<p>Kept.</p>{markup}") == "Kept.", markup


def test_a_signup_form_inside_the_article_wrapper_does_not_take_the_article_with_it() -> None:
    url = "https://responsiblestatecraft.org/x-1"
    paragraphs = "".join(f"<p>Paragraph {i} of the argument, long enough.</p>" for i in range(12))
    html = (
        "<html><body><div class='posts-custom' data-source='current_post'><article elid='1'>"
        "<h1 class='widget__headline'><span class='widget__headline-text'>T</span></h1>"
        f"<div class='body-description'><div class='wrap'>{paragraphs}"
        "<form><input type='email'></form></div></div></article></div></body></html>"
    )
    text = parse_page(html, url).article.body_text
    assert text.count("Paragraph") == 12


def test_rendered_tweets_become_links_and_keep_the_paragraphs_around() -> None:
    article = parsed("browser-saved")["article"]
    paras = article["body_text"].split("\n\n")
    i = paras.index("https://twitter.com/i/status/1800234567890123456")
    assert paras[i - 1].endswith("famine conditions in parts of Darfur:")
    assert paras[i + 1].startswith("A ceasefire remains")
    assert "<iframe" not in article["body_html"]


def test_the_visible_section_wins_over_a_syndication_bucket() -> None:
    got = parsed("syndication-section")
    assert got["article"]["section"] == "Middle East"
    assert got["teasers"][0]["section"] == "Europe"
    # Without the section links and the breadcrumb, article:section still wins.
    html = re.sub(
        r'<div class="all-related-sections">.*?</div>', "", html_of("syndication-section")
    )
    html = re.sub(r'<nav class="breadcrumbs".*?</nav>', "", html)
    assert parse_page(html, meta("syndication-section")["url"]).article.section == "Middle East"
    # A post has several sections: a data-category the page shows among them stands.
    secondary = html_of("syndication-section").replace(
        'data-category="MSN"', 'data-category="Military Industrial Complex"'
    )
    page = parse_page(secondary, meta("syndication-section")["url"])
    assert page.article.section == "Military Industrial Complex"
    assert "section" not in page.drift
    # A data-category that agrees with the page is no drift.
    agreeing = html_of("syndication-section").replace(
        'data-category="MSN"', 'data-category="Middle East"'
    )
    page = parse_page(agreeing, meta("syndication-section")["url"])
    assert "section" not in page.drift and page.article.section == "Middle East"


def test_a_page_that_is_not_an_article_is_not_read_by_the_generic_extractor() -> None:
    html = html_of("generic-wordpress")
    html = html.replace('content="article"', 'content="website"')
    html = re.sub(r'<script type="application/ld\+json".*?</script>', "", html, flags=re.S)
    html = html.replace("<article ", "<div ").replace("</article>", "</div>")
    page = parse_page(html, meta("generic-wordpress")["url"])
    assert page.article is None and page.drift == []
    # An <article> element alone makes an article of a page without RebelMouse blocks...
    html = html.replace('<div class="post-48213', '<article class="post-48213', 1)
    html = html.replace("</div>\n</main>", "</article>\n</main>", 1)
    assert parse_page(html, meta("generic-wordpress")["url"]).article.extractor == "generic"
    # ...but not of a RebelMouse listing, whose posts are <article> elements in its blocks.
    listing = parse_page(html_of("tag-listing"), meta("tag-listing")["url"])
    assert listing.article is None and len(listing.teasers) == 5


def test_the_generic_extractor_sanitises_and_leaves_the_shared_tree_alone() -> None:
    from lxml import etree
    from parsel import Selector

    html = html_of("generic-wordpress").replace(
        "<p>CENTCOM appears",
        '<p>Hostile <img src="x.jpg" onerror="alert(1)"><a href="javascript:alert(1)">x</a>'
        "<script>alert(1)</script> end.</p><p>CENTCOM appears",
    )
    sel = Selector(text=html)
    before = etree.tostring(sel.root)
    article = parse_page(sel, meta("generic-wordpress")["url"]).article
    assert etree.tostring(sel.root) == before
    assert article.extractor == "generic"
    for bad in ("<script", "onerror", "javascript:", "alert("):
        assert bad not in article.body_html
    assert "CENTCOM appears" in article.body_text


def test_the_generic_extractor_asks_trafilatura_for_what_the_metadata_lacks() -> None:
    """trafilatura's metadata is read only on need; a page whose <meta> and JSON-LD lost the
    headline and the author still gets both from it."""
    html = re.sub(
        r'<script type="application/ld\+json".*?</script>',
        "",
        html_of("generic-wordpress"),
        flags=re.S,
    )
    html = re.sub(r'<meta (?:property|name)="(?:og:title|twitter:title|author)"[^>]*>', "", html)
    article = parse_page(html, meta("generic-wordpress")["url"]).article
    assert article.extractor == "generic"
    assert article.title == "US strikes in Iraq show risk of escalation to wider war"
    assert len(article.authors) == 1 and "Samuel Whitcomb" in article.authors[0].name


@pytest.mark.parametrize(
    "nav",
    [
        '<nav class="site-breadcrumbs">',
        '<nav aria-label="Breadcrumb">',
        "<nav aria-label='breadcrumb'>",
    ],
)
def test_a_breadcrumb_is_found_by_its_class_or_by_its_aria_label(nav: str) -> None:
    html = re.sub(
        r'<div class="all-related-sections">.*?</div>', "", html_of("syndication-section")
    )
    html = html.replace('<nav class="breadcrumbs" aria-label="breadcrumb">', nav)
    html = html.replace(">Middle East</a></nav>", ">Asia</a></nav>")
    page = parse_page(html, meta("syndication-section")["url"])
    assert page.article.section == "Asia"


def test_a_lazy_image_skips_placeholders_and_a_saved_page_s_local_copies() -> None:
    from lxml.html import fragment_fromstring

    from rsarchive.extract.body import image_url

    base = "https://example.org/post/"
    for placeholder, real in [
        ("data:image/gif;base64,R0lGOD", "/a.jpg"),
        ("/spacer.SVG?x=1", "/a.jpg"),
        ("./Page_files/a.jpg", "/a.jpg"),
        ("https://cdn.example.org/deep/Saved%20Page_FILES/b.jpg", "/a.jpg"),
    ]:
        img = fragment_fromstring(f'<img data-src="{placeholder}" src="{real}">')
        assert image_url(img, base) == "https://example.org/a.jpg", placeholder
    # "_files" not ending a path segment is part of a real name.
    img = fragment_fromstring('<img src="/media/my_files.jpg">')
    assert image_url(img, base) == "https://example.org/media/my_files.jpg"


def test_url_cache_keys_a_relative_link_by_its_base_and_an_absolute_one_without() -> None:
    """Absolute links are cached without the page's URL (pages share them); a relative one
    still resolves against the page it is on, whichever page asked first."""
    a, b = "https://example.org/a/page/", "https://example.org/b/page/"
    assert normalize_url("../other/", base=a) == "https://example.org/a/other"
    assert normalize_url("../other/", base=b) == "https://example.org/b/other"
    link = " https://Example.org/post/?utm_source=x "
    assert normalize_url(link, base=a) == normalize_url(link, base=b) == normalize_url(link)
    assert normalize_url(link, base=a) == "https://example.org/post"


def test_joined_urls_are_what_urljoin_gives_whichever_base_asked_first() -> None:
    """join_url caches a URL that names its host by the base's scheme alone: the same answers
    as urljoin for every base, edge cases included."""
    from urllib.parse import urljoin

    from rsarchive.urls import join_url

    bases = ["https://example.org/a/b", "HTTPS://Example.org/", "http://example.org/x/", "/rel/"]
    urls = [
        "https://cdn.example.org/i.jpg?w=1&h=2",
        "https://cdn.example.org/p?",
        "HTTPS://CDN.example.org/a/./b/../c;p?q#f",
        "http://cdn.example.org/i.jpg",
        "ftp://files.example.org/x",
        "https:///no-host",
        "https://\t/tab",
        "//cdn.example.org/i.jpg",
        "i.jpg",
        "mailto:x@example.org",
    ]
    for _ in range(2):  # the second time from the cache
        for base in bases:
            for url in urls:
                assert join_url(base, url) == urljoin(base, url), (base, url)


def test_part_class_cache_answers_per_value_and_stays_bounded() -> None:
    """The class-attribute cache of the post scan: right per value, never past its bound however
    many distinct values a site's pages carry."""
    from rsarchive.extract.posts import part_classes

    assert part_classes("widget__headline h1 body") == {"widget__headline", "body"}
    assert part_classes("widget__body clearfix") == frozenset()
    bound = part_classes.cache_info().maxsize
    for i in range(bound + 500):
        part_classes(f"body col-{i}")
    assert part_classes.cache_info().currsize <= bound
    assert part_classes("body col-1") == {"body"}


def test_page_root_hands_out_the_element_classes_lxml_html_would() -> None:
    """The C-level class lookup gives each node the class lxml.html's Python lookup gives it."""
    import lxml.html
    from parsel import Selector

    from rsarchive.extract.tree import page_root

    html = (
        "<html><body><!-- c --><form><input name=q><label>L</label><select></select>"
        "<textarea></textarea></form><p>x<?pi y?></p></body></html>"
    )
    expected = [type(el) for el in lxml.html.document_fromstring(html).iter()]
    assert {c.__name__ for c in expected} >= {"FormElement", "InputElement", "HtmlComment"}
    assert [type(el) for el in page_root(Selector(text=html)).iter()] == expected
    assert [type(el) for el in page_root(html.encode()).iter()] == expected
