"""Exit codes of the `rsarchive` command (docs/architecture.md §5), apart from the CLI so the crawl
pipeline can compute a run's code without importing the command-line package.

0 ok; 1 finished with failures; 3 stopped early; 64 usage; 74 database I/O; 75 try later;
78 configuration or schema problem. The query commands add 65 (a malformed search query) and
66 (no such article or page in the archive).
"""

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_STOPPED = 3
EXIT_USAGE = 64
EXIT_DATAERR = 65  # a malformed search query
EXIT_NOINPUT = 66  # no such article or page in the archive
EXIT_CANTCREAT = 73  # an output file cannot be written
EXIT_DB = 74
EXIT_TRY_LATER = 75
EXIT_CONFIG = 78
