"""Pure extraction: HTML (+ URL) in, typed data out. No Scrapy, no database."""

from rsarchive.extract.rebelmouse import PARSER_VERSION, parse_page

__all__ = ["PARSER_VERSION", "parse_page"]
