"""The store's writer thread, with group commit: the pages waiting when it is free share a commit.

A crawl's rule is one page, one transaction: a page is stored whole or not at all, and its item
is done only once its page is committed. The writer keeps the rule and commits less often: each
page still runs in a SAVEPOINT of its own (rolled back alone if it fails), and the pages that
queued up while the previous commit ran are committed together (``Archive.batched``). A page
never waits for others to arrive: an idle crawl commits each page as before; a busy one commits
once for the many pages the reactor handed over meanwhile, which spares the WAL most of its
writes (the same B-tree pages, rewritten once per commit).

Other writes (a run's row, a fetch state, a removal) run on the same thread, between batches,
on connections of their own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from rsarchive.archive import Archive

# Pages per commit at most: bounds what one failed commit costs, and the time a page waits.
MAX_BATCH = 64


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    page: bool  # one page's transaction: may share a commit
    future: Future = field(default_factory=Future)
    started: bool = False  # its future was set running (a job put back keeps that)


class GroupWriter(Executor):
    """One thread that runs every write, in order; ``submit_page`` jobs share commits."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        #: Set once the archive is open: what page jobs are batched in.
        self.archive: Archive | None = None
        self._jobs: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        #: Commits that stored pages so far (a page alone, or pages sharing one): against the
        #: pages stored, how much the crawl's pages were grouped.
        self.page_commits = 0
        self._thread = threading.Thread(target=self._loop, name="rsarchive-store", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn`` alone, after the jobs before it (and their commit)."""
        return self._put(_Job(fn, args, kwargs, page=False))

    def submit_page(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run one page's store (``Archive.store_page`` and kin); done once it is committed."""
        return self._put(_Job(fn, args, kwargs, page=True))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._wake:
            self._closed = True
            if cancel_futures:
                while self._jobs:
                    self._jobs.popleft().future.cancel()
            self._wake.notify()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _put(self, job: _Job) -> Future:
        with self._wake:
            if self._closed:
                raise RuntimeError("cannot store after the writer was shut down")
            self._jobs.append(job)
            self._wake.notify()
        return job.future

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._closed:
                    self._wake.wait()
                if not self._jobs:
                    return
                batch = [self._jobs.popleft()]
                if batch[0].page and self.archive is not None:
                    while self._jobs and self._jobs[0].page and len(batch) < self.max_batch:
                        batch.append(self._jobs.popleft())
            batch = [job for job in batch if _start(job)]
            if len(batch) == 1 or not batch[0].page:
                for job in batch:
                    if _run(job) and job.page:
                        self.page_commits += 1
            elif self._run_batch(batch):
                self.page_commits += 1

    def _run_batch(self, batch: list[_Job]) -> bool:
        """Whether a commit stored any of the batch."""
        assert self.archive is not None
        done: list[tuple[_Job, Any]] = []
        failed: list[tuple[_Job, BaseException]] = []
        try:
            with self.archive.batched(len(batch) + 1):  # one commit, when the block ends
                for i, job in enumerate(batch):
                    try:
                        done.append((job, job.fn(*job.args, **job.kwargs)))
                    except BaseException as exc:
                        failed.append((job, exc))
                        if not self.archive.in_write_transaction():
                            # The database ended the whole transaction (a full disk, an I/O
                            # error): the pages before this one went with it. The ones after
                            # it wait for a transaction of their own.
                            failed.extend((j, exc) for j, _ in done)
                            done = []
                            self._requeue(batch[i + 1 :])
                            break
        except BaseException as exc:  # the commit failed: none of the batch is stored
            failed.extend((job, exc) for job, _ in done)
            done = []
        for job, result in done:
            job.future.set_result(result)
        for job, exc in failed:
            job.future.set_exception(exc)
        return bool(done)

    def _requeue(self, jobs: list[_Job]) -> None:
        with self._wake:
            self._jobs.extendleft(reversed(jobs))


def _start(job: _Job) -> bool:
    """Whether to run the job (False: it was cancelled)."""
    if not job.started:
        job.started = job.future.set_running_or_notify_cancel()
    return job.started


def _run(job: _Job) -> bool:
    """Run one job alone; whether it succeeded."""
    try:
        result = job.fn(*job.args, **job.kwargs)
    except BaseException as exc:
        job.future.set_exception(exc)
        return False
    job.future.set_result(result)
    return True
