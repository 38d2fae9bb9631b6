"""A crawl's CPU work (policy text extraction, APK inspection) in worker processes, off the event loop.

The crawl process then only does I/O and parsing, and the heavy work of every store's pipelines runs
beside it on the other core. ``FINMON_CRAWL_WORKERS`` sets the number of worker processes of one crawl
process (0: run the work on the event loop, as a test or a one-core machine may prefer). Workers start
on first use, by ``spawn`` (the crawl process runs threads, so it is never forked), and die with their crawl
process, even when it is killed.

A worker that dies (killed, out of memory, a crash in a parser's C code) breaks its pool, and every piece of
work then in flight fails with it. Each of those is retried once, alone, in a separate one-process pool, so
the innocent ones succeed and only the work that kills a worker twice fails, with :class:`WorkerDied`: that
costs one item, never the crawl.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, ClassVar

from finmon.processes import die_with_parent

log = logging.getLogger(__name__)


class WorkerDied(Exception):
    """The worker process running this item's work died twice (the item fails; the crawl goes on)."""


class Workers:
    """The worker processes of one crawl process, shared by its pipelines (see :meth:`of`)."""

    _shared: ClassVar[dict[int, "Workers"]] = {}

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.users = 0
        self._pools: dict[str, ProcessPoolExecutor] = {}  # "shared" (the workers) and "alone" (retries)
        self._alone: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @classmethod
    def of(cls, settings) -> "Workers":
        """The process-wide workers for ``FINMON_CRAWL_WORKERS``; each user calls :meth:`release` when done."""
        processes = max(settings.getint("FINMON_CRAWL_WORKERS"), 0)
        workers = cls._shared.setdefault(processes, cls(processes))
        workers.users += 1
        return workers

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a worker (on the event loop when there are none); its result or exception."""
        if not self.processes:
            return function(*args)
        try:
            return await self._submit("shared", self.processes, function, args)
        except BrokenProcessPool:
            log.warning("a crawl worker process died running %s: retrying it alone", _name(function))
        async with self._retry_lock():
            try:
                return await self._submit("alone", 1, function, args)
            except BrokenProcessPool:
                raise WorkerDied(f"the worker process died twice running {_name(function)}") from None

    async def _submit(self, name: str, processes: int, function: Callable[..., Any], args: tuple) -> Any:
        pool = self._pools.get(name)
        if pool is None:
            # started from the event loop's thread, which lives as long as the crawl: a worker dies with its crawl
            pool = self._pools[name] = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                                           initializer=die_with_parent)
        try:
            return await asyncio.wrap_future(pool.submit(function, *args))
        except BrokenProcessPool:
            if self._pools.get(name) is pool:  # the first to see the broken pool replaces it
                del self._pools[name]
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    def _retry_lock(self) -> asyncio.Lock:
        """One retry at a time (a lock of the running event loop)."""
        loop = asyncio.get_running_loop()
        if self._alone is None or self._alone[0] is not loop:
            self._alone = (loop, asyncio.Lock())
        return self._alone[1]

    def release(self) -> None:
        """One user is done; the last one stops the worker processes."""
        self.users -= 1
        if self.users <= 0:
            self.close()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools.clear()
        self._shared.pop(self.processes, None)


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", "the work")
