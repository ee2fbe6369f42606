"""gitdns-primary: serve a git repository's zones; fetch and reload it on demand."""

from __future__ import annotations

# Imported now rather than when the first key file is decoded (in the worker thread,
# after twistd -u/-g dropped privileges, when the interpreter's files may be out of reach).
import encodings.utf_8_sig  # noqa: F401
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.name
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gitdns.authority import GitAuthority
from gitdns.client import query_tcp_then_udp
from gitdns.gitrepo import GitError, GitRepository, Remote, Snapshot
from gitdns.gitsync import GitSync, Loaded
from gitdns.keys import Key, KeyLoad, load_keys, may
from gitdns.metrics import Metrics, metrics_service
from gitdns.notify import ATTEMPT_TIMEOUT, Notifier, Target, notify_targets
from gitdns.prerenderer import Prerenderer
from gitdns.privileges import give_away_to_twistd_user
from gitdns.ratelimit import RateLimiter
from gitdns.respond import Event, NotifyReceived, Reply, Served, UpdateReceived, respond
from gitdns.savedjournal import load_journal, save_journal
from gitdns.server import (
    DNSStreamFactory,
    Later,
    ListenerService,
    RequestDispatcher,
    ResponseCache,
)
from gitdns.update import serial_newer
from gitdns.xfr import extend_journal
from gitdns.zonecache import ZoneCache
from gitdns.zones import LoadResult, Zone

log = Logger()
# More new zones than this in one load (a start-up of a big repository) are logged as
# one line, not one each: 10,000 lines took the reactor over a second.
LOGGED_NEW_ZONES = 100

# Seconds between attempts to reach an unreachable remote, growing to the last value.
FETCH_RETRY = (5, 10, 30, 60, 120, 300)


@dataclass(frozen=True)
class PrimaryConfig:
    remote: Remote
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("0.0.0.0", 53), ("::", 53)])
    data_dir: str = "gitdns-data"
    # --axfr: zone transfers without a key.
    open_axfr: bool = False
    # Port our NOTIFYs go to (53; another for test setups on one machine).
    notify_port: int = 53
    # Response rate limiting (responses per second), None: off.
    rrl_rate: float | None = None
    rrl_slip: int = 2
    # --metrics HOST:PORT: Prometheus text on http://HOST:PORT/metrics.
    metrics: tuple[str, int] | None = None


def canonical_order(name: dns.name.Name) -> tuple[bytes, ...]:
    """A sort key giving dnspython's order of names (RFC 4034 6.1), made once per name:
    sorting 10,000 zones with dnspython's comparisons took seconds at start-up."""
    return tuple(label.lower() for label in reversed(name.labels))


class Primary(service.MultiService):
    def __init__(self, config: PrimaryConfig, clock: IReactorTime | None = None) -> None:
        super().__init__()
        self.config = config
        self.repo = GitRepository(os.path.join(config.data_dir, "repo.git"), config.remote)
        # Until the first load is in: SERVFAIL (see startService).
        self.authority = GitAuthority(Served(loading=True))
        self._told_loading = False
        self.cache = ResponseCache()
        self.metrics = Metrics(zones=lambda: self.authority.served.zones)
        self.authority.on_change(self._zones_changed)
        dispatcher = RequestDispatcher(self.handle, self.cache, self.metrics, self.authority)
        streams = DNSStreamFactory(dispatcher)
        limiter = RateLimiter(config.rrl_rate, config.rrl_slip) if config.rrl_rate else None
        for host, port in config.listen:
            ListenerService(host, port, dispatcher, streams, limiter=limiter).setServiceParent(self)
        self._syncing: defer.Deferred[None] | None = None
        self._sync_again = False
        self._fetched_at_start = False
        self._snapshot: Snapshot | None = None
        self._keys: KeyLoad | None = None
        self._key_blobs: frozenset[tuple[str, str]] = frozenset()
        self._restore_journal = True
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.notifier = Notifier(clock, self._send_notify, metrics=self.metrics)
        cache = ZoneCache(os.path.join(config.data_dir, "zone-cache"))
        self.git = GitSync(self.repo, clock, self._swap, self.metrics, cache)
        self.prerenderer = Prerenderer(self.authority, clock)
        if config.metrics is not None:
            metrics_service(self.metrics, *config.metrics).setServiceParent(self)
        # Secondaries that registered with a signed SOA query: zone -> address -> key.
        self.registered: dict[dns.name.Name, dict[str, Key]] = {}

    def handle(self, wire: bytes, tcp: bool, peer: tuple[str, int]) -> Reply | Later | None:
        now = int(self.clock.seconds())
        served = self.authority.served
        if served.loading and not self._told_loading:
            self._told_loading = True
            log.info("Answering SERVFAIL until the zones are loaded")
        reply = respond(served, wire, tcp=tcp, now=now, peer=peer[0])
        if reply is None or reply.event is None:
            return reply
        if isinstance(reply.event, UpdateReceived):
            return Later(self.git.submit(reply.event, peer[0]))
        self._handle_event(reply.event, peer[0])
        return reply

    def _handle_event(self, event: Event, peer: str) -> None:
        if isinstance(event, NotifyReceived):
            if event.accepted:
                log.info(
                    "NOTIFY for {zone} from {peer} (key {key}): fetching {remote}",
                    zone=str(event.zone),
                    peer=peer,
                    key=str(event.keyname),
                    remote=self.config.remote.url,
                )
                self.sync()
            else:
                log.warn(
                    "NOTIFY for {zone} from {peer} refused: {reason}",
                    zone=str(event.zone),
                    peer=peer,
                    reason=f"key {event.keyname} may not notify it"
                    if event.keyname
                    else "not signed",
                )
            return
        key = self._keys.keyring.get(event.keyname) if self._keys else None
        if key is None:
            return
        known = self.registered.setdefault(event.zone, {})
        if known.get(peer) == key:
            return
        known[peer] = key
        log.info(
            "Secondary {peer} (key {key}) registered for {zone}",
            peer=peer,
            key=str(key.name),
            zone=str(event.zone),
        )
        zones = self.authority.served.zones.zones
        for zone in zones.values() if event.zone == dns.name.root else [zones.get(event.zone)]:
            if zone is not None:
                self.notifier.notify(zone, [Target(peer, key)])

    def _send_notify(self, address: str, message: dns.message.Message) -> defer.Deferred:
        return query_tcp_then_udp(
            self.clock, address, self.config.notify_port, message, ATTEMPT_TIMEOUT
        )

    def notify_zone(self, zone: Zone) -> None:
        """NOTIFY every secondary of zone (SPEC.md "Primary")."""
        registered = {
            **self.registered.get(dns.name.root, {}),
            **self.registered.get(zone.origin, {}),
        }
        keys = self._keys.keyring.values() if self._keys else ()
        self.notifier.notify(zone, notify_targets(zone, keys, registered))

    def prepare(self) -> None:
        """Before the reactor runs: have a clone (clone it if none) and read its files.

        They are read before twistd drops privileges (-u/-g), like the clone is made;
        parsing them is left to the worker thread (startService). Raises GitError when
        there is no clone and the remote cannot be cloned, or it has no such branch.
        """
        os.makedirs(self.config.data_dir, mode=0o700, exist_ok=True)
        if not self.repo.exists():
            log.info("Cloning {remote}", remote=self.config.remote.url)
            self.repo.clone_blocking()
            self._fetched_at_start = True
        for lock in self.repo.clear_stale_locks():
            log.warn("Removed {lock}, left by a process that was killed", lock=lock)
        recovered = self.repo.recover_blocking()
        if recovered is not None and recovered.removed:
            log.warn(
                "Removed {count} torn objects from the clone (a power cut?)",
                count=len(recovered.removed),
            )
        if recovered is not None and recovered.moved_to:
            log.warn(
                "Branch moved back from {moved_from} to {moved_to}: the commit after it was"
                " not whole (a power cut?), and its UPDATEs were never answered",
                moved_from=recovered.moved_from or "(unreadable)",
                moved_to=recovered.moved_to,
            )
        self._snapshot = self.repo.snapshot_blocking()

    def startService(self) -> None:
        """Listen at once; load the clone in the worker thread, then serve it, notify
        every zone's secondaries (as every zone is new) and fetch."""
        super().startService()
        self.repo.start()
        self.prerenderer.start()
        started = self.clock.seconds()

        def loaded(first: Loaded) -> None:
            log.info(
                "{count} zones loaded in {seconds:.2f} s ({stored} parsed by an earlier run)",
                count=len(self.authority.served.zones.zones),
                seconds=self.clock.seconds() - started,
                stored=first.result.stored,
            )

        def failed(failure: Failure) -> None:
            # The fetch below loads the clone again (and retries while it fails).
            log.failure("Could not load the zones of {path}", failure, path=self.repo.path)
            if self._fetched_at_start:
                self.sync()

        snapshot, self._snapshot = self._snapshot, None
        self.git.start(snapshot).addCallbacks(loaded, failed)
        if not self._fetched_at_start:
            self.sync()

    def stopService(self) -> defer.Deferred[None]:
        self.notifier.stop()
        self.git.stop()
        self.prerenderer.stop()
        served = self.authority.served
        if not self._restore_journal:  # loaded: else what was saved is still to be read
            save_journal(self.config.data_dir, served.journal, served.zones)
        d = defer.maybeDeferred(super().stopService)
        d.addBoth(lambda result: self.repo.stop() or result)
        return d

    def sync(self) -> defer.Deferred[None]:
        """Fetch the remote and reload; a sync asked for while one runs is run once after."""
        if self._syncing is not None:
            self._sync_again = True
            return self._syncing
        self._syncing = self._fetch_until_reached()

        def done(result: object) -> object:
            self._syncing = None
            if self._sync_again:
                self._sync_again = False
                self.sync()
            return result

        return self._syncing.addBoth(done)

    @defer.inlineCallbacks
    def _fetch_until_reached(self):  # type: ignore[no-untyped-def]
        for attempt in itertools.count():
            try:
                yield self.git.sync()
            except GitError as error:
                delay = FETCH_RETRY[min(attempt, len(FETCH_RETRY) - 1)]
                log.warn("{error}; trying again in {delay} s", error=str(error), delay=delay)
                yield task.deferLater(self.clock, delay, lambda: None)
                continue
            return

    def _swap(self, loaded: Loaded) -> None:
        snapshot, result = loaded.snapshot, loaded.result
        for error in result.errors:
            self.metrics.zone_load_errors += 1
            log.error("Zone not loaded: {error}", error=str(error))
        key_files = snapshot.key_files
        key_blobs = frozenset((f.name, f.blob_id) for f in key_files)
        old_keys = self._keys.keyring if self._keys else {}
        keyring = self.authority.served.keyring
        if self._keys is None or key_blobs != self._key_blobs:
            # Read again only when a key file changed (not for every UPDATE's commit).
            self._keys = load_keys({f.name: f.data for f in key_files}, self._keys)
            self._key_blobs = key_blobs
            keyring = self._keys.tsig_keyring()
            for warning in self._keys.warnings:
                log.warn("Key ignored: {warning}", warning=warning)
        added = [key for name, key in self._keys.keyring.items() if old_keys.get(name) != key]
        journal = self.authority.served.journal
        if self._restore_journal:
            # The first load: the differences saved when we last stopped.
            self._restore_journal = False
            journal = load_journal(self.config.data_dir, result.zoneset)
        previous = self.authority.served
        served = Served(
            zones=result.zoneset,
            keyring=keyring,
            may=may,
            open_axfr=self.config.open_axfr,
            journal=extend_journal(journal, result.zoneset, loaded.deltas),
        )
        # The zones loaded at start-up get their tables at once, changed ones when quiet.
        self.prerenderer.swap(served, result, at_once=previous.loading)
        if not loaded.by_updates:
            # A commit of UPDATEs is logged once per UPDATE (gitsync), not again here.
            self._log_changes(result, previous, snapshot.commit)
        if self.running and added and old_keys:
            # A secondary added by a new key hears about its zones at once.
            for zone in result.zoneset.zones.values():
                if zone.origin not in result.changed:
                    targets = notify_targets(zone, added)
                    self.notifier.notify(zone, [t for t in targets if t.key is not None])

    def _zones_changed(self, result: LoadResult, previous: Served) -> None:
        if result.zoneset.zones.keys() != previous.zones.zones.keys():
            self.cache.clear()
        else:
            self.cache.invalidate(result.changed)
        if self.running:
            for origin in result.changed:
                # A removed zone is announced too: its secondaries find it gone and drop it.
                zone = result.zoneset.zones.get(origin) or previous.zones.zones[origin]
                self.notify_zone(zone)

    def _log_changes(self, result: LoadResult, previous: Served, commit: str) -> None:
        log.info(
            "Serving {count} zones from commit {commit}",
            count=len(result.zoneset.zones),
            commit=commit[:12],
        )
        added = [origin for origin in result.changed if origin not in previous.zones.zones]
        if len(added) > LOGGED_NEW_ZONES:
            log.info("{count} new zones loaded", count=len(added))
        for origin in sorted(result.changed, key=canonical_order):
            old = previous.zones.zones.get(origin)
            new = result.zoneset.zones.get(origin)
            if new is None:
                log.info("Zone {zone} removed", zone=str(origin))
            elif old is None:
                if len(added) <= LOGGED_NEW_ZONES:
                    log.info(
                        "Zone {zone} loaded, serial {serial}", zone=str(origin), serial=new.serial
                    )
            elif not serial_newer(new.serial, old.serial):
                log.warn(
                    "Zone {zone} changed but its serial {serial} did not increase",
                    zone=str(origin),
                    serial=new.serial,
                )
            else:
                log.info(
                    "Zone {zone} reloaded, serial {old} -> {serial}",
                    zone=str(origin),
                    old=old.serial,
                    serial=new.serial,
                )


def make_primary(options: Mapping[str, Any]) -> Primary:
    """The service for twistd's options; exits with one clear line when it cannot start."""
    config = PrimaryConfig(
        remote=options["remote"],
        listen=options["listen"] or PrimaryConfig.__dataclass_fields__["listen"].default_factory(),
        data_dir=options["data-dir"],
        open_axfr=bool(options["axfr"]),
        notify_port=options["notify-port"],
        rrl_rate=options["rrl-rate"],
        rrl_slip=options["rrl-slip"],
        metrics=options["metrics"],
    )
    primary = Primary(config)
    try:
        primary.prepare()
    except GitError as error:
        raise SystemExit(f"gitdns-primary: {error}") from None
    # The clone was made as root: after the privilege drop it is fetched and committed in.
    give_away_to_twistd_user(options, config.data_dir)
    return primary
