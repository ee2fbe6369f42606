"""The shell of gitdns.prerendered: zones' tables built in a thread of their own.

A zone version gets its table once it has been served unchanged for QUIET seconds (at
once when loaded at start-up): a stream of UPDATEs to a big zone makes a new version
per commit, and rendering 275,000 answers for each would be wasted. Zones of fewer
than MIN_NAMES names get none. Tables are built one batch at a time, off the reactor,
and served only while their zone version is.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection
from typing import TypeVar

import dns.name
from twisted.internet import defer, threads
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from gitdns.authority import GitAuthority
from gitdns.names import wire_key
from gitdns.prerendered import Table, build_table, kept_tables, still_served
from gitdns.respond import Served
from gitdns.zones import LoadResult, Zone, ZoneSet

log = Logger()

T = TypeVar("T")

# Seconds a changed zone must stay unchanged before its table is built.
QUIET = 5.0
# Zones with fewer names get no table: the response cache keeps all their answers
# after one query each, and 10,000 small zones' tables would be built after every
# start (seconds of the interpreter, which reloads meanwhile wait for) for little.
MIN_NAMES = 1000
# A build sleeps this many times as long as others held the interpreter during its
# last chunk of work (see Prerenderer._checkpoint).
YIELD = 2

Run = Callable[..., defer.Deferred]


class Prerenderer:
    def __init__(
        self,
        authority: GitAuthority,
        clock: IReactorTime,
        quiet: float = QUIET,
        run: Run | None = None,
        min_names: int = MIN_NAMES,
    ) -> None:
        self.authority = authority
        self.clock = clock
        self.quiet = quiet
        self.min_names = min_names
        self.pool = ThreadPool(minthreads=0, maxthreads=1, name="gitdns-prerender")
        # run(function, *args): in the thread (tests run it in place).
        self._run = run or self._in_thread
        # Zones waiting to be quiet for long enough, by wire_key of their origin.
        self._timers: dict[bytes, IDelayedCall] = {}
        # The origins served with at least min_names names and not expired, by wire_key.
        self._origins: dict[bytes, dns.name.Name] = {}
        self._due: dict[bytes, dns.name.Name] = {}
        # Zones due together are built together: the batch starts once they all are.
        self._batch: IDelayedCall | None = None
        self._building = False
        self._under_way: set[bytes] = set()
        self._stopping = threading.Event()
        # When the build's current chunk began, in time and in the thread's CPU time.
        self._chunk_started = self._chunk_cpu = 0.0

    def _in_thread(self, function: Callable[..., T], *args: object) -> defer.Deferred[T]:
        from twisted.internet import reactor

        return threads.deferToThreadPool(reactor, self.pool, function, *args)

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        """No more builds; a build under way stops at its next zone."""
        self._stopping.set()
        for timer in [*self._timers.values(), self._batch]:
            if timer is not None and timer.active():
                timer.cancel()
        self._timers.clear()
        self._batch = None
        self.pool.stop()

    def swap(self, served: Served, result: LoadResult, at_once: bool = False) -> None:
        """Have the authority serve served (with result, as GitAuthority.swap), with the
        tables of the zones result did not change: the changed ones and those past
        their expire time (a secondary's, which answer SERVFAIL) get none, and the
        changed ones get a new one after QUIET seconds unchanged, or at once."""
        # An expired zone is dropped as a changed one is, whatever the caller says.
        dropped = result.changed | served.expired
        tables = kept_tables(self.authority.served.tables, served.zones, dropped)
        self.authority.swap(dataclasses.replace(served, tables=tables), result)
        self._schedule(dropped, at_once)

    def _schedule(self, changed: Collection[dns.name.Name], at_once: bool = False) -> None:
        """After a swap: changed zones (as LoadResult.changed) and any others left
        without a table get one after QUIET seconds unchanged, or at once."""
        served = self.authority.served
        zones = served.zones.zones
        restart = set()
        for origin in changed:
            key = wire_key(origin)
            restart.add(key)
            zone = zones.get(origin)
            # A secondary's zone past its expire time answers SERVFAIL: no table.
            if (
                zone is not None
                and len(zone.names) >= self.min_names
                and origin not in served.expired
            ):
                self._origins[key] = origin
            else:
                self._origins.pop(key, None)
                timer = self._timers.pop(key, None)
                if timer is not None and timer.active():
                    timer.cancel()
        tables = self.authority.served.tables
        for key, origin in [
            (key, origin) for key, origin in self._origins.items() if tables.get(key, False) is None
        ]:
            timer = self._timers.get(key)
            waiting = (timer is not None and timer.active()) or key in self._due
            if key not in restart and (waiting or key in self._under_way):
                continue
            if timer is not None and timer.active():
                timer.cancel()
            self._due.pop(key, None)
            delay = 0 if at_once else self.quiet
            self._timers[key] = self.clock.callLater(delay, self._quiet, key, origin)

    def _quiet(self, key: bytes, origin: dns.name.Name) -> None:
        del self._timers[key]
        self._due[key] = origin
        if self._batch is None:
            self._batch = self.clock.callLater(0, self._build_next)

    def _build_next(self) -> None:
        if self._batch is not None and self._batch.active():
            self._batch.cancel()
        self._batch = None
        if self._building or not self._due or self._stopping.is_set():
            return
        due, self._due = self._due, {}
        served = self.authority.served
        zoneset = served.zones
        zones = [
            zone
            for key, origin in due.items()
            if served.tables.get(key, False) is None and (zone := zoneset.zones.get(origin))
        ]
        self._under_way = set(due)
        self._building = True
        started = self.clock.seconds()
        d = self._run(self._build_blocking, zones, zoneset)
        d.addCallback(self._built, zoneset, started)
        d.addErrback(self._failed)

        def next_batch(_: object) -> None:
            self._building = False
            self._under_way = set()
            self._build_next()

        d.addBoth(next_batch)

    def _build_blocking(self, zones: list[Zone], zoneset: ZoneSet) -> list[Table]:
        built = []
        self._chunk_started, self._chunk_cpu = time.monotonic(), time.thread_time()
        for zone in zones:
            table = build_table(zone, zoneset, self._checkpoint)
            if table is None:
                break
            built.append(table)
        return built

    def _checkpoint(self) -> bool:
        """Between chunks of a build: leave the interpreter to the reactor for a while
        if it is busy (it held the interpreter during the chunk: the chunk's time less
        the time it took us), not at all when it is idle.

        While we work, the GIL comes back to the reactor only up to the switch interval
        (5 ms) after each of its socket calls: under load it answered a quarter of its
        rate without tables, and slowed the build down as much."""
        busy = (time.monotonic() - self._chunk_started) - (time.thread_time() - self._chunk_cpu)
        self._stopping.wait(max(0.0, busy) * YIELD)
        self._chunk_started, self._chunk_cpu = time.monotonic(), time.thread_time()
        return self._stopping.is_set()

    def _built(self, tables: list[Table], built_for: ZoneSet, started: float) -> None:
        served = self.authority.served
        fresh = {
            table.key: table
            for table in tables
            if served.tables.get(table.key, False) is None
            and table.zone.origin not in served.expired
            and still_served(table, served.zones, built_for)
        }
        if fresh:
            self.authority.refine(dataclasses.replace(served, tables={**served.tables, **fresh}))
        seconds = self.clock.seconds() - started
        if len(fresh) == 1:
            (table,) = fresh.values()
            log.info(
                "Prerendered {names} names of {zone} serial {serial} in {seconds:.2f} s",
                names=len(table.entries),
                zone=str(table.zone.origin),
                serial=table.zone.serial,
                seconds=seconds,
            )
        elif fresh:
            log.info(
                "Prerendered {count} zones in {seconds:.2f} s", count=len(fresh), seconds=seconds
            )
        # Tables no longer right (zones added or removed meanwhile) are built again.
        self._under_way = set()
        self._schedule(())

    def _failed(self, failure: Failure) -> None:
        log.failure("Bug: zones not prerendered", failure)
