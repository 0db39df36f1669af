"""A fault hook for the test suite only: ``RSARCHIVE_FAULT_KILL_AFTER=<point>:<n>`` makes the
process kill itself with SIGKILL right after the n-th time the store passes ``<point>``, so the
tests can prove that a kill anywhere, even inside a page's transaction, leaves the archive whole.

Points: ``run`` (a run's row committed), ``lookup``, ``capture``, ``article``, ``teasers``,
``state`` (the statements of one page's transaction, in order; ``state`` is its last before the
commit), ``commit`` (the page committed); ``extract`` (a page split in an extraction process,
which is the process that dies). Unset, as it always is outside the tests, every call is
one comparison.
"""

from __future__ import annotations

import os
import signal

_point, _, _count = (os.environ.get("RSARCHIVE_FAULT_KILL_AFTER") or "").partition(":")
_left = int(_count) if _point and _count.isdigit() else 0


def reached(point: str) -> None:
    """Die here (SIGKILL, no clean-up of any kind) if the hook names this point and count."""
    global _left
    if not _left or point != _point:
        return
    _left -= 1
    if not _left:
        os.kill(os.getpid(), signal.SIGKILL)
