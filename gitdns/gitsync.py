"""The primary's link to git: fetch and reload, UPDATEs committed, commits pushed.

Every change of the local repository runs in its worker thread, one after the other,
and so does loading the zones of the result: each load starts from the one before,
and results are installed in the order they were made.

An UPDATE is acknowledged (NOERROR) only once the commit holding it is on disk. While
a commit is being written, new UPDATEs queue up and go into the next commit together
(group commit). Pushing is asynchronous, in a thread of its own beside the commits:
retried with backoff while the remote is unreachable, and, when the remote moved, our
commits are replayed on its head first.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import dns.name
import dns.rcode
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gitdns.answer import Answer
from gitdns.commits import Applied, Replayed, UpdateItem, unsigned_wire
from gitdns.gitrepo import GitError, GitRepository, PushOutcome, Snapshot
from gitdns.metrics import Metrics
from gitdns.respond import Request, UpdateReceived
from gitdns.xfr import Delta, delta, zone_delta
from gitdns.zonecache import ZoneCache
from gitdns.zones import LoadedZone, LoadResult, ZoneSet, load_zoneset

log = Logger()

T = TypeVar("T")

# After a push, the next waits for this many seconds without a commit, or this long at
# the most; a commit after a quiet moment is pushed at once.
PUSH_QUIET = 0.3
PUSH_LATEST = 3.0

# Group commit: when the worker is free but fewer UPDATEs wait than were under way
# together last time (in the last commit and queued behind it), wait this long for the
# others: clients answered together send their next UPDATEs together, and one commit
# (one disk flush) for all of them beats two for half of them each.
GATHER_WAIT = 0.005

# Seconds between push attempts while the remote is unreachable, growing to the last.
PUSH_RETRY = (1, 2, 5, 10, 30, 60, 120, 300)


@dataclass(frozen=True)
class Loaded:
    """A commit's zones, ready to serve, with how each changed zone differs (for IXFR)."""

    snapshot: Snapshot
    result: LoadResult
    deltas: dict[dns.name.Name, Delta]
    # Made by our own commit of UPDATEs (each has its log line already).
    by_updates: bool = False


Install = Callable[[Loaded], None]


@dataclass
class _Waiting:
    item: UpdateItem
    request: Request
    answer: defer.Deferred[bytes]


@dataclass
class UpdateCounters:
    applied: int = 0
    rejected: int = 0
    # Acknowledged updates that could not be replayed on a moved remote.
    dropped: int = 0
    # Local commits not yet on the remote.
    pending_push: int = 0


class GitSync:
    def __init__(
        self,
        repo: GitRepository,
        clock: IReactorTime,
        install: Install,
        metrics: Metrics | None = None,
        cache: ZoneCache | None = None,
    ) -> None:
        self.repo = repo
        self.cache = cache
        # Entries of zones no longer served are all removed once, then as replaced.
        self._cache_tidied = False
        self.clock = clock
        self.install = install
        self.counters = UpdateCounters()
        self.metrics = metrics or Metrics()
        self.metrics.updates = lambda: dataclasses.asdict(self.counters)
        self._queue: list[_Waiting] = []
        self._committing = False
        self._under_way = 1
        self._gather_timer: IDelayedCall | None = None
        # One fetch or push at a time (both write the remote-tracking branch); pushes
        # run beside commits, in a thread of their own.
        self._remote = defer.DeferredLock()
        self._pushing: defer.Deferred[None] | None = None
        self._push_again = False
        # A push in the worker thread holds back the commits (and the answers) behind
        # it: under a stream of UPDATEs, push after a quiet moment, or after a while.
        self._push_timer: IDelayedCall | None = None
        self._unpushed_since: float | None = None
        self._last_push = float("-inf")
        # The zones as last loaded in the worker thread (only that thread touches it).
        self._loaded = ZoneSet()
        # What is being served, by origin: where UPDATEs look up their zone's file.
        self.served = ZoneSet()

    # In the worker thread (or before the reactor runs).

    def _known(self) -> dict[str, LoadedZone]:
        return {loaded.filename: loaded for loaded in self._loaded.sources.values()}

    def _load(
        self,
        snapshot: Snapshot,
        parsed: dict[str, LoadedZone],
        changes: Mapping[str, tuple[list, list]] | None = None,
    ) -> Loaded:
        """Zones of snapshot, reusing what is parsed already (and parsed just now).

        changes: the records a commit of ours changed, by file; other changed zones
        are compared with their previous version.
        """
        previous = self._loaded
        stored = self.cache.get if self.cache is not None else None
        result = load_zoneset(snapshot.files, previous, parsed.values(), stored)
        self._loaded = result.zoneset
        deltas = {}
        for origin in result.changed:
            old, new = previous.zones.get(origin), result.zoneset.zones.get(origin)
            if old is None or new is None:
                continue
            known = (changes or {}).get(result.zoneset.sources[origin].filename)
            deltas[origin] = delta(old, new, *known) if known else zone_delta(old, new)
        return Loaded(snapshot, result, deltas)

    def load_blocking(self) -> Loaded:
        return self._load(self.repo.snapshot_blocking(), {})

    def _store_blocking(self, result: LoadResult) -> None:
        """Keep the zones result read from text in the cache, and drop the entries of
        those it replaced (at the first load: of every zone it does not serve)."""
        assert self.cache is not None
        try:
            self.cache.put(result.read)
            if self._cache_tidied:
                self.cache.remove(result.dropped)
            else:
                self.cache.keep_only(result.zoneset.sources.values())
                self._cache_tidied = True
        except OSError as error:
            log.warn("Zone cache not written: {error}", error=str(error))

    def _fetch_blocking(self) -> tuple[Loaded, Replayed | None]:
        snapshot, replayed = self.repo.fetch_blocking(self._known())
        return self._load(snapshot, replayed.zones if replayed else {}), replayed

    def _commit_blocking(self, items: list[UpdateItem], now: int) -> tuple[Applied, Loaded | None]:
        applied, snapshot = self.repo.commit_updates_blocking(items, self._known(), now)
        if snapshot is None:
            return applied, None
        loaded = self._load(snapshot, applied.zones, applied.deltas)
        return applied, dataclasses.replace(loaded, by_updates=True)

    # On the reactor.

    def _timed(self, name: str, function: Callable[..., T], *args: object) -> defer.Deferred[T]:
        """function(*args) in the worker thread, its duration and outcome counted."""
        return self._counted(name, self.repo.run(function, *args))

    def _counted(self, name: str, operation: defer.Deferred[T]) -> defer.Deferred[T]:
        started = self.clock.seconds()

        def count(result: object) -> object:
            failed = isinstance(result, Failure)
            self.metrics.git_operation(name, self.clock.seconds() - started, failed)
            return result

        return operation.addBoth(count)

    def _install(self, loaded: Loaded) -> None:
        self.served = loaded.result.zoneset
        self.install(loaded)

    def start(self, snapshot: Snapshot | None = None) -> defer.Deferred[Loaded]:
        """Load the clone as it is (snapshot, read already, or read now) in the worker
        thread, and install it; fires with that load. Operations asked for after this
        one run after it."""
        if snapshot is None:
            d = self._timed("load", self.load_blocking)
        else:
            d = self._timed("load", self._load, snapshot, {})
        return d.addCallback(self._install_and_remember)

    def _install_and_remember(self, loaded: Loaded) -> Loaded:
        """Serve a load from the repository; then the worker stores the zones it read."""
        self._install(loaded)
        result = loaded.result
        if self.cache is not None and (result.read or result.dropped or not self._cache_tidied):
            stored = self._timed("store", self._store_blocking, result)
            stored.addErrback(lambda failure: log.failure("Zone cache not written", failure))
        return loaded

    def submit(self, event: UpdateReceived, client: str) -> defer.Deferred[bytes]:
        """Queue an authorised UPDATE; fires with the response once it is durable."""
        signature = event.request.signature
        assert signature is not None
        loaded = self.served.sources[event.zone]
        query = event.request.query
        item = UpdateItem(
            event.zone,
            loaded.filename,
            unsigned_wire(event.request.wire, query),
            signature.keyname,
            client,
            query,
        )
        waiting = _Waiting(item, event.request, defer.Deferred())
        self._queue.append(waiting)
        self._commit_queued()
        return waiting.answer

    def _commit_queued(self) -> None:
        if self._committing or not self._queue:
            return
        if len(self._queue) < self._under_way:
            if self._gather_timer is None:
                self._gather_timer = self.clock.callLater(GATHER_WAIT, self._gathered)
            return
        self._commit_batch()

    def _gathered(self) -> None:
        self._gather_timer = None
        if not self._committing and self._queue:
            self._commit_batch()

    def _commit_batch(self) -> None:
        if self._gather_timer is not None:
            self._gather_timer.cancel()
            self._gather_timer = None
        batch, self._queue = self._queue, []
        self._committing = True
        items = [waiting.item for waiting in batch]
        d = self._timed("commit", self._commit_blocking, items, int(self.clock.seconds()))
        d.addCallbacks(self._committed, self._not_committed, (batch,), None, (batch,))

        def next_batch(_: object) -> None:
            self._committing = False
            self._under_way = len(batch) + len(self._queue)
            self._commit_queued()

        d.addBoth(next_batch)

    def _committed(self, outcome: tuple[Applied, Loaded | None], batch: list[_Waiting]) -> None:
        applied, loaded = outcome
        if loaded is not None:
            self._install(loaded)
            self.counters.pending_push = loaded.snapshot.ahead
        changes = iter(applied.changes)
        for waiting, rcode in zip(batch, applied.rcodes, strict=True):
            item = waiting.item
            if rcode == dns.rcode.NOERROR:
                self.counters.applied += 1
            else:
                self.counters.rejected += 1
            change = ""
            if loaded is not None and not rcode:
                serial = loaded.result.zoneset.zones[item.zone].serial
                change = f", {next(changes)}, serial {serial}"
            log.info(
                "UPDATE {zone} from {client} (key {key}): {rcode}{change}",
                zone=str(item.zone),
                client=item.client,
                key=str(item.keyname),
                rcode=dns.rcode.to_text(rcode),
                change=change,
            )
            waiting.answer.callback(waiting.request.reply(Answer(rcode=rcode)))
        if loaded is not None:
            self._push_soon()

    def _not_committed(self, failure: Failure, batch: list[_Waiting]) -> None:
        log.failure("UPDATE batch of {count} not committed", failure, count=len(batch))
        for waiting in batch:
            self.counters.rejected += 1
            waiting.answer.callback(waiting.request.reply(Answer(rcode=dns.rcode.SERVFAIL)))

    def _push_soon(self) -> None:
        now = self.clock.seconds()
        if self._pushing is None and now - self._last_push >= PUSH_QUIET:
            # Nothing pushed lately: push at once (a lone UPDATE is on the remote at once).
            self._push_now()
            return
        if self._unpushed_since is None:
            self._unpushed_since = now
        if self._push_timer is not None and self._push_timer.active():
            self._push_timer.cancel()
        delay = min(PUSH_QUIET, max(0.0, self._unpushed_since + PUSH_LATEST - now))
        self._push_timer = self.clock.callLater(delay, self._push_now)

    def _push_now(self) -> None:
        if self._push_timer is not None and self._push_timer.active():
            self._push_timer.cancel()
        self._push_timer = None
        self._unpushed_since = None
        self._last_push = self.clock.seconds()
        self.push()

    def stop(self) -> None:
        """No push scheduled any more (what is not pushed is pushed at the next start)."""
        if self._push_timer is not None and self._push_timer.active():
            self._push_timer.cancel()
        if self._gather_timer is not None:
            self._gather_timer.cancel()
            self._gather_timer = None

    def push(self) -> defer.Deferred[None]:
        """Push until the remote has our commits; a push asked for meanwhile runs after."""
        if self._pushing is not None:
            self._push_again = True
            return self._pushing
        self._pushing = self._push_until_done()

        def done(result: object) -> object:
            self._pushing = None
            if self._push_again:
                self._push_again = False
                self.push()
            return result

        return self._pushing.addBoth(done)

    @defer.inlineCallbacks
    def _push_until_done(self):  # type: ignore[no-untyped-def]
        for attempt in itertools.count():
            try:
                outcome = yield self._remote.run(lambda: self._counted("push", self.repo.push()))
            except GitError as error:
                delay = PUSH_RETRY[min(attempt, len(PUSH_RETRY) - 1)]
                log.warn(
                    "Push failed ({error}); {count} commits waiting, trying again in {delay} s",
                    error=str(error),
                    count=self.counters.pending_push,
                    delay=delay,
                )
                yield task.deferLater(self.clock, delay, lambda: None)
                continue
            if outcome is PushOutcome.REJECTED:
                # The remote moved: replay our commits on its head, then push again.
                log.info("Push rejected: the remote moved; replaying our updates on it")
                yield self.sync()
                continue
            self.counters.pending_push = 0
            log.info("Pushed to {remote}", remote=self.repo.remote.url)
            return

    def sync(self) -> defer.Deferred[None]:
        """Fetch, replay our unpushed commits on the remote's head, install the result.

        Fails with GitError when the remote cannot be reached.
        """
        d = self._remote.run(self._timed, "fetch", self._fetch_blocking)

        def fetched(outcome: tuple[Loaded, Replayed | None]) -> None:
            loaded, replayed = outcome
            if replayed is not None:
                for item, rcode in replayed.dropped:
                    self.counters.dropped += 1
                    log.error(
                        "UPDATE {zone} from {client} (key {key}) lost: it no longer applies "
                        "on the remote's head ({rcode})",
                        zone=str(item.zone),
                        client=item.client,
                        key=str(item.keyname),
                        rcode=dns.rcode.to_text(rcode),
                    )
            self._install_and_remember(loaded)
            self.counters.pending_push = loaded.snapshot.ahead
            if loaded.snapshot.ahead:
                # Ours to push: replayed just now, or left from before a restart.
                self.push()

        return d.addCallback(fetched)
