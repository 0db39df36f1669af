"""The browsable web view (`rsarchive serve`): the archive in Datasette, read-only.

Needs the ``web`` extra (``pip install 'rsarchive[web]'``); nothing else in rsarchive imports
this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .metadata import build_metadata

if TYPE_CHECKING:
    from datasette.app import Datasette

#: Datasette settings: more time for full-text search and facets over a large archive than
#: Datasette's defaults (1 s per query, 200 ms per facet).
SETTINGS = {
    "sql_time_limit_ms": 3500,
    "facet_time_limit_ms": 1000,
    "default_page_size": 50,
}


HERE = Path(__file__).resolve().parent


def make_datasette(
    path: Path, *, immutable: bool = False, site_url: str, images: bool = True
) -> Datasette:
    """A Datasette for the archive file at ``path``, with rsarchive's metadata and plugin.

    The file is opened read-only (SQLite ``mode=ro``: a crawl may write to it meanwhile), or with
    ``immutable`` as a file that nothing changes while it is served (``immutable=1``: faster,
    counts are cached, but changes made meanwhile may be missed or misread). With ``images``
    false, article pages show their images as links and the browser asks no other host.
    """
    from datasette.app import Datasette
    from datasette.plugins import pm

    from . import plugin

    if not pm.is_registered(plugin):
        pm.register(plugin, name="rsarchive")
    # Datasette names a database after its file's stem; the metadata is keyed by that name.
    name = path.stem
    kwargs = {"immutables": [str(path)]} if immutable else {"files": [str(path)]}
    metadata = build_metadata(name, site_url)
    metadata["plugins"] = {"rsarchive": {"images": images, "site_url": site_url}}
    return Datasette(
        metadata=metadata,
        settings=SETTINGS,
        # The article page, the lead of the index and database pages, folded descriptions.
        template_dir=str(HERE / "templates"),
        static_mounts=[(plugin.STATIC_MOUNT, str(HERE / "static"))],
        **kwargs,
    )
