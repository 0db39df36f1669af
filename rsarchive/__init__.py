"""rsarchive: a faithful, queryable archive of Responsible Statecraft, built on Scrapy."""

__version__ = "0.1.0"
