"""gitdns-secondary: copies of a primary's zones by AXFR/IXFR under TSIG, served like ours.

The shell around gitdns/refresh.py: it runs the state machine's actions (SOA queries,
transfers, timers) with real sockets and a real clock and feeds back what happened.
Answers come from the same respond()/listeners/response cache as the primary's.
Transferred zones are kept in --data-dir, so a restart while the primary is down
still serves them until they expire (SPEC.md "Secondary").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from twisted.application import service
from twisted.internet import defer, threads
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gitdns import refresh
from gitdns.authority import GitAuthority
from gitdns.client import DNSClientError, bound_to_listen_address, exchange_tcp, query_tcp
from gitdns.keys import Key, KeyRole, Operation, may, tsig_keyring
from gitdns.metrics import Metrics, metrics_service
from gitdns.prerenderer import Prerenderer
from gitdns.privileges import give_away_to_twistd_user
from gitdns.respond import NotifyReceived, Reply, Served, respond
from gitdns.server import DNSStreamFactory, ListenerService, RequestDispatcher, ResponseCache
from gitdns.update import serial_newer
from gitdns.xfr import Delta, extend_journal
from gitdns.zonefile import ZoneFileError
from gitdns.zones import LoadResult, Zone, ZoneSet, parse_zone

log = Logger()

SOA_TIMEOUT = 5.0
# A transfer fails when the primary sends nothing for this long, or takes longer overall.
TRANSFER_IDLE_TIMEOUT = 30.0
TRANSFER_TIMEOUT = 3600.0
# How often we repeat the root SOA query that registers us for every zone (a restarted
# primary forgets us), and the backoff while it fails.
REGISTER_INTERVAL = 300.0
REGISTER_RETRY = (2, 5, 10, 30, 60, 120, 300)


@dataclass(frozen=True)
class SecondaryConfig:
    keys: list[Key]
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("0.0.0.0", 53), ("::", 53)])
    data_dir: str = "gitdns-secondary"
    # Port of the primaries (53; another for test setups on one machine).
    primary_port: int = 53
    # The primary of keys whose name carries no address (gitdns-acme --primary).
    primary: str | None = None
    # --metrics HOST:PORT: Prometheus text on http://HOST:PORT/metrics.
    metrics: tuple[str, int] | None = None


@dataclass(frozen=True)
class Source:
    """A primary to copy a zone from, and the key to sign our requests with."""

    address: str
    key: Key


def _transfer_role(key: Key, primary: str | None = None) -> tuple[KeyRole, str] | None:
    """A key's role when it lets us transfer, and its primary: the address in the key
    name, else primary (gitdns-acme's --primary, for keys that name none)."""
    role = key.role
    if role is None or role.operation not in (Operation.TRANSFER, Operation.UPDATE):
        return None
    address = str(role.primary) if role.primary is not None else primary
    return None if address is None else (role, address)


def configured_zones(
    keys: Iterable[Key], primary: str | None = None
) -> dict[dns.name.Name, list[Source]]:
    """Zones named by `_transfer`/`_update` keys with a primary address (not the root)."""
    zones: dict[dns.name.Name, list[Source]] = {}
    for key in sorted(keys, key=lambda k: k.name):
        found = _transfer_role(key, primary)
        if found is not None and found[0].zone != dns.name.root:
            zones.setdefault(found[0].zone, []).append(Source(found[1], key))
    return zones


def root_sources(keys: Iterable[Key], primary: str | None = None) -> list[Source]:
    """Primaries that hand us every zone (root keys, SPEC.md "Dynamic zones")."""
    return [
        Source(found[1], key)
        for key in sorted(keys, key=lambda k: k.name)
        if (found := _transfer_role(key, primary)) is not None and found[0].zone == dns.name.root
    ]


def sources_for(
    zone: dns.name.Name,
    keys: Iterable[Key],
    prefer: dns.name.Name | None = None,
    primary: str | None = None,
) -> list[Source]:
    """Where zone can come from: keys granting its transfer that name a primary, the
    most specific zone first, the key named prefer (a NOTIFY's) before the others."""
    found = []
    for key in keys:
        pair = _transfer_role(key, primary)
        if pair is not None and zone.is_subdomain(pair[0].zone):
            role, address = pair
            found.append((key.name != prefer, -len(role.zone), key.name, Source(address, key)))
    return [source for *_, source in sorted(found)]


# ---------------------------------------------------------------------------- disk


_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def file_stem(zone: dns.name.Name) -> str:
    """A file name for zone: its name when that is plain, else its wire form in hex."""
    text = zone.to_text(omit_final_dot=True)
    if _SAFE.fullmatch(text) and len(text) <= 200:
        return text
    return "_" + zone.to_wire().hex()


def zone_text(zone: Zone) -> str:
    """Master-file text of zone, SOA first, absolute names (read back by parse_zone)."""
    lines = [zone.soa.to_text()]
    lines.extend(rrset.to_text() for rrset in zone.rrsets() if rrset is not zone.soa)
    return "\n".join(lines) + "\n"


def write_atomically(path: str, data: bytes) -> None:
    """Replace path by data so that a crash leaves the old or the new file, never half."""
    directory = os.path.dirname(path) or "."
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename itself
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class Stored:
    """A zone copy read back from --data-dir."""

    zone: Zone
    contact: float
    configured: bool


class Store:
    """The data directory: `<zone>.zone` (master file) and `<zone>.json` (refresh state).

    The zone file is written before the state, so the state never claims a contact
    for data newer than what is on disk.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _paths(self, zone: dns.name.Name) -> tuple[str, str]:
        stem = os.path.join(self.directory, file_stem(zone))
        return f"{stem}.zone", f"{stem}.json"

    def save_zone(self, zone: Zone) -> None:
        write_atomically(self._paths(zone.origin)[0], zone_text(zone).encode("utf-8"))

    def save_state(
        self, zone: dns.name.Name, serial: int, contact: float, configured: bool
    ) -> None:
        state = {
            "zone": zone.to_text(),
            "serial": serial,
            "contact": contact,
            "configured": configured,
        }
        write_atomically(self._paths(zone)[1], json.dumps(state).encode("utf-8") + b"\n")

    def remove(self, zone: dns.name.Name) -> None:
        for path in self._paths(zone):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def load(self) -> tuple[dict[dns.name.Name, Stored], list[str]]:
        """Every zone kept here, and a message for each file that could not be read."""
        stored: dict[dns.name.Name, Stored] = {}
        problems: list[str] = []
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return stored, problems
        for name in names:
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    state = json.load(f)
                origin = dns.name.from_text(state["zone"])
                zone_path = self._paths(origin)[0]
                with open(zone_path, encoding="utf-8") as f:
                    zone = parse_zone(origin, f.read(), zone_path)
                contact = float(state["contact"])
                if zone.serial != state["serial"]:
                    # The zone file is newer than the state (written first): its data
                    # was never confirmed later than the state says.
                    problems.append(f"{path}: serial {state['serial']}, zone file {zone.serial}")
                stored[origin] = Stored(zone, contact, bool(state.get("configured", True)))
            except (OSError, ValueError, KeyError, TypeError, dns.exception.DNSException) as e:
                problems.append(f"{path}: {e}")
            except ZoneFileError as e:
                problems.append(str(e))
        return stored, problems


# ---------------------------------------------------------------------------- the service


class _Carried:
    """One zone we carry: its refresh state, data, primaries and pending timer."""

    def __init__(self, origin: dns.name.Name, sources: list[Source], configured: bool) -> None:
        self.origin = origin
        self.sources = sources
        self.configured = configured
        self.state = refresh.ZoneRefresh(origin, configured=configured)
        self.zone: Zone | None = None
        # The differences between the versions we served lately (IXFR to our own
        # secondaries), as the primary's journal.
        self.journal: tuple[Delta, ...] = ()
        # The primary that answered the last SOA query: the transfer goes there.
        self.answered: Source | None = None
        self.timer: IDelayedCall | None = None
        # Disk writes of this zone, one after the other, so the last one wins.
        self.writing: defer.Deferred[None] = defer.succeed(None)


class Secondary(service.MultiService):
    def __init__(self, config: SecondaryConfig, clock: IReactorTime | None = None) -> None:
        super().__init__()
        self.config = config
        self.keys = list(config.keys)
        self.store = Store(config.data_dir)
        self.authority = GitAuthority(self._served({}))
        self.cache = ResponseCache()
        self.metrics = Metrics(zones=lambda: self.authority.served.zones)
        if config.metrics is not None:
            metrics_service(self.metrics, *config.metrics).setServiceParent(self)
        self.authority.on_change(self._zones_changed)
        dispatcher = RequestDispatcher(self.handle, self.cache, self.metrics, self.authority)
        streams = DNSStreamFactory(dispatcher)
        for host, port in config.listen:
            ListenerService(host, port, dispatcher, streams).setServiceParent(self)
        if clock is None:
            from twisted.internet import reactor

            # Primaries (IPv4, named by the keys) register the address our signed SOA
            # queries come from for their NOTIFYs: make it the one we listen on.
            clock = bound_to_listen_address(reactor, config.listen, "0.0.0.0")
        self.clock = clock
        self.prerenderer = Prerenderer(self.authority, clock)
        self.carried: dict[dns.name.Name, _Carried] = {}
        self._stored: dict[dns.name.Name, Stored] = {}
        self._register_calls: list[IDelayedCall] = []
        # Events raised while actions run wait here, so each step sees the state it
        # was computed from (a Deferred may fire at once).
        self._queue: list[tuple[_Carried, refresh.Event]] = []
        self._stepping = False

    # -- start and stop -------------------------------------------------------

    def prepare(self) -> None:
        """Before the reactor runs: the data directory and the copies kept in it."""
        os.makedirs(self.config.data_dir, mode=0o700, exist_ok=True)
        stored, problems = self.store.load()
        for problem in problems:
            log.warn("Stored zone not usable: {problem}", problem=problem)
        self._stored = stored
        configured = configured_zones(self.keys, self.config.primary)
        for origin, sources in configured.items():
            self.carried[origin] = _Carried(origin, sources, configured=True)
        for origin, kept in stored.items():
            if origin in self.carried:
                continue
            sources = sources_for(origin, self.keys, primary=self.config.primary)
            if kept.configured or not sources:
                log.info(
                    "Stored zone {zone} is no longer ours (no key names a primary for it)",
                    zone=str(origin),
                )
                continue
            self.carried[origin] = _Carried(origin, sources, configured=False)
        for origin, carried in self.carried.items():
            kept = stored.get(origin)
            if kept is not None:
                carried.zone = kept.zone
        if not self.carried and not root_sources(self.keys, self.config.primary):
            log.warn("No zones: no --key names a zone and a primary address")
        self._publish(set(self.carried), at_once=True)

    def startService(self) -> None:
        super().startService()
        self.prerenderer.start()
        now = self.clock.seconds()
        for carried in list(self.carried.values()):
            kept = self._stored.get(carried.origin)
            copy = None
            if kept is not None and carried.zone is not None:
                copy = refresh.Copy(kept.zone.serial, refresh.Timers.of(kept.zone), kept.contact)
                log.info(
                    "Serving {zone} serial {serial} from disk (last contact with the "
                    "primary {ago:.0f} s ago)",
                    zone=str(carried.origin),
                    serial=kept.zone.serial,
                    ago=now - kept.contact,
                )
            self._begin(carried, copy, now)
        self._stored = {}
        for source in root_sources(self.keys, self.config.primary):
            self._register(source, 0)

    def stopService(self) -> defer.Deferred[object]:
        self.prerenderer.stop()
        for carried in self.carried.values():
            self._cancel_timer(carried)
        for call in self._register_calls:
            if call.active():
                call.cancel()
        stopping = defer.maybeDeferred(super().stopService)
        writes = [carried.writing for carried in self.carried.values()]
        return defer.gatherResults([stopping, *writes], consumeErrors=True)

    def _begin(self, carried: _Carried, copy: refresh.Copy | None, now: float) -> None:
        carried.state, actions = refresh.start(
            carried.origin, now, copy, configured=carried.configured
        )
        self._run(carried, actions)

    # -- answering ----------------------------------------------------------------

    def handle(self, wire: bytes, tcp: bool, peer: tuple[str, int]) -> Reply | None:
        now = int(self.clock.seconds())
        reply = respond(self.authority.served, wire, tcp=tcp, now=now, peer=peer[0])
        if reply is not None and isinstance(reply.event, NotifyReceived):
            self._notified(reply.event, peer[0])
        return reply

    def _notified(self, event: NotifyReceived, peer: str) -> None:
        how = f"key {event.keyname}" if event.keyname else "unsigned"
        if not event.accepted:
            log.warn(
                "NOTIFY for {zone} from {peer} ({how}) refused",
                zone=str(event.zone),
                peer=peer,
                how=how,
            )
            return
        carried = self.carried.get(event.zone)
        if carried is not None:
            log.info(
                "NOTIFY for {zone} from {peer} ({how}): checking the primary",
                zone=str(event.zone),
                peer=peer,
                how=how,
            )
            self._feed(carried, refresh.Notified())
            return
        # A key allowed to NOTIFY a zone we do not carry (a root key: a new dynamic
        # zone): start carrying it, from the primaries our keys name for it.
        sources = sources_for(
            event.zone, self.keys, prefer=event.keyname, primary=self.config.primary
        )
        if not sources:
            log.warn(
                "NOTIFY for {zone} from {peer} ({how}): no key names a primary for it",
                zone=str(event.zone),
                peer=peer,
                how=how,
            )
            return
        log.info(
            "NOTIFY for {zone} from {peer} ({how}): new zone, transferring it",
            zone=str(event.zone),
            peer=peer,
            how=how,
        )
        carried = self.carried[event.zone] = _Carried(event.zone, sources, configured=False)
        self._publish({event.zone})
        self._begin(carried, None, self.clock.seconds())

    def check_now(self, origin: dns.name.Name) -> None:
        """Ask the primary for origin's SOA at once, as on a NOTIFY (gitdns-acme: the
        signed query over TCP registers us again with a primary that restarted)."""
        carried = self.carried.get(origin)
        if carried is not None:
            self._feed(carried, refresh.Notified())

    # -- the state machine ----------------------------------------------------------

    def _feed(self, carried: _Carried, event: refresh.Event) -> None:
        self._queue.append((carried, event))
        if self._stepping:
            return
        self._stepping = True
        try:
            while self._queue:
                carried, event = self._queue.pop(0)
                if self.carried.get(carried.origin) is not carried:
                    continue  # a zone dropped meanwhile
                before = carried.state.copy
                carried.state, actions = refresh.handle(carried.state, event, self.clock.seconds())
                after = carried.state.copy
                if after is not None and carried.zone is not None and before != after:
                    self._save_state(carried)
                self._run(carried, actions)
        finally:
            self._stepping = False

    def _run(self, carried: _Carried, actions: Iterable[refresh.Action]) -> None:
        for action in actions:
            if isinstance(action, refresh.QuerySoa):
                self._query_soa(carried).addErrback(self._soa_bug, carried)
            elif isinstance(action, refresh.Transfer):
                self._transfer(carried, action)
            elif isinstance(action, refresh.Wake):
                self._wake(carried, action.at)
            elif isinstance(action, refresh.Expire):
                log.warn(
                    "Zone {zone} expired: no contact with its primary for {expire:.0f} s; "
                    "answering SERVFAIL",
                    zone=str(carried.origin),
                    expire=carried.state.copy.timers.expire if carried.state.copy else 0,
                )
                self._publish({carried.origin})
            elif isinstance(action, refresh.Unexpire):
                log.info("Zone {zone} confirmed by its primary again", zone=str(carried.origin))
                self._publish({carried.origin})
            elif isinstance(action, refresh.Drop):
                self._drop(carried, action.forget)

    def _wake(self, carried: _Carried, at: float | None) -> None:
        self._cancel_timer(carried)
        if at is not None and self.running:
            delay = max(0.0, at - self.clock.seconds())
            carried.timer = self.clock.callLater(delay, self._feed, carried, refresh.Timer())

    def _cancel_timer(self, carried: _Carried) -> None:
        if carried.timer is not None and carried.timer.active():
            carried.timer.cancel()
        carried.timer = None

    def _drop(self, carried: _Carried, forget: bool) -> None:
        log.warn(
            "Zone {zone} dropped: its primary does not serve it{more}",
            zone=str(carried.origin),
            more="" if forget else " (asking again later)",
        )
        carried.zone, carried.journal = None, ()
        if forget:
            self._cancel_timer(carried)
            del self.carried[carried.origin]
        origin = carried.origin
        carried.writing.addBoth(lambda _: self.store.remove(origin)).addErrback(
            self._write_failed, origin
        )
        self._publish({origin})

    # -- talking to the primary -----------------------------------------------------

    def _signed(self, message: dns.message.Message, key: Key) -> dns.message.Message:
        tsig = key.tsig_key()
        message.use_tsig({tsig.name: tsig}, tsig.name, algorithm=tsig.algorithm)
        return message

    def _soa_query(self, zone: dns.name.Name, key: Key) -> dns.message.Message:
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        query.flags &= ~dns.flags.RD
        return self._signed(query, key)

    @defer.inlineCallbacks
    def _query_soa(self, carried: _Carried):  # type: ignore[no-untyped-def]
        """Signed SOA query over TCP (it also registers us with a gitdns primary)."""
        reasons = []
        port = self.config.primary_port
        for source in carried.sources:
            query = self._soa_query(carried.origin, source.key)
            try:
                response = yield query_tcp(self.clock, source.address, port, query, SOA_TIMEOUT)
            except DNSClientError as error:
                reasons.append(str(error))
                continue
            rcode = response.rcode()
            if not response.had_tsig:
                # Only a signed answer may tell us anything, least of all to drop a zone.
                reasons.append(f"{source.address}: unsigned {dns.rcode.to_text(rcode)} answer")
                continue
            if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED):
                log.info(
                    "SOA {zone} from {peer}: {rcode}",
                    zone=str(carried.origin),
                    peer=source.address,
                    rcode=dns.rcode.to_text(rcode),
                )
                self._feed(carried, refresh.ZoneGone())
                return
            soa = [
                rrset
                for rrset in response.answer
                if rrset.name == carried.origin and rrset.rdtype == dns.rdatatype.SOA
            ]
            if rcode != dns.rcode.NOERROR or not soa or not response.flags & dns.flags.AA:
                reasons.append(
                    f"{source.address}: {dns.rcode.to_text(rcode)}"
                    + ("" if soa and response.flags & dns.flags.AA else ", not authoritative")
                )
                continue
            carried.answered = source
            serial = soa[0][0].serial
            held = carried.state.copy.serial if carried.state.copy else None
            if held is not None and serial != held and not serial_newer(serial, held):
                log.warn(
                    "Primary {peer} has {zone} serial {serial}, older than ours ({held}): "
                    "keeping ours",
                    peer=source.address,
                    zone=str(carried.origin),
                    serial=serial,
                    held=held,
                )
            self._feed(carried, refresh.SoaAnswered(serial))
            return
        reason = "; ".join(reasons) or "no primary"
        log.warn("SOA query for {zone} failed: {reason}", zone=str(carried.origin), reason=reason)
        self._feed(carried, refresh.SoaFailed(reason))

    def _soa_bug(self, failure: Failure, carried: _Carried) -> None:
        log.failure("Bug: SOA query for {zone}", failure, zone=str(carried.origin))
        self._feed(carried, refresh.SoaFailed("internal error"))

    def _transfer(self, carried: _Carried, action: refresh.Transfer) -> None:
        source = carried.answered or carried.sources[0]
        origin = carried.origin
        base = carried.zone if action.kind == refresh.IXFR else None
        query = refresh.transfer_query(origin, action.kind, action.serial, source.key.tsig_key())
        incoming = refresh.Incoming(query, base)
        started = self.clock.seconds()
        idle: list[IDelayedCall] = []

        def on_message(wire: bytes) -> bool:
            for call in idle:
                if call.active():
                    call.reset(TRANSFER_IDLE_TIMEOUT)
            return incoming.receive(wire)

        exchange = exchange_tcp(
            self.clock,
            source.address,
            self.config.primary_port,
            incoming.wire,
            on_message,
            TRANSFER_TIMEOUT,
        )
        idle.append(self.clock.callLater(TRANSFER_IDLE_TIMEOUT, exchange.cancel))

        def build(_: object) -> defer.Deferred[tuple[Zone | None, Delta | None]]:
            # Indexing a large zone takes seconds: not on the reactor thread.
            def indexed() -> tuple[Zone | None, Delta | None]:
                new = incoming.build()
                return new, incoming.difference(new) if new is not None else None

            return threads.deferToThread(indexed)

        def done(outcome: tuple[Zone | None, Delta | None]) -> None:
            new, step = outcome
            kind = action.kind
            if incoming.ixfr and not incoming.incremental:
                kind = "IXFR (AXFR-style)"
            old_serial = carried.zone.serial if carried.zone is not None else None
            self.metrics.transfers_in[kind.split()[0]] += 1
            log.info(
                "{kind} of {zone} from {peer} (key {key}): serial {old} -> {new}, "
                "{messages} messages, {size} bytes, {records} records, {elapsed:.3f} s",
                kind=kind,
                zone=str(origin),
                peer=source.address,
                key=str(source.key.name),
                old=old_serial if old_serial is not None else "none",
                new=new.serial if new is not None else old_serial,
                messages=incoming.messages,
                size=incoming.size,
                records=incoming.records,
                elapsed=self.clock.seconds() - started,
            )
            if self.carried.get(origin) is not carried:
                return
            if new is not None:
                carried.zone = new
                # A whole zone breaks the chain of differences: start again from it.
                carried.journal = (
                    ()
                    if step is None
                    else extend_journal(
                        {origin: carried.journal}, ZoneSet({origin: new}), {origin: step}
                    ).get(origin, ())
                )
                self._publish({origin})
                self._save_zone(carried, new)
            assert carried.zone is not None
            zone = carried.zone
            copy = refresh.Copy(zone.serial, refresh.Timers.of(zone), self.clock.seconds())
            self._feed(carried, refresh.TransferDone(copy))

        def failed(failure: Failure) -> None:
            incoming.close()
            reason = failure.getErrorMessage() or failure.type.__name__
            if failure.check(defer.CancelledError, defer.TimeoutError):
                reason = "the primary stopped sending"
            log.warn(
                "{kind} of {zone} from {peer} (key {key}) failed after {messages} messages, "
                "{size} bytes: {reason}",
                kind=action.kind,
                zone=str(origin),
                peer=source.address,
                key=str(source.key.name),
                messages=incoming.messages,
                size=incoming.size,
                reason=reason,
            )
            self._feed(carried, refresh.TransferFailed(reason))

        def stop_idle(result: object) -> object:
            for call in idle:
                if call.active():
                    call.cancel()
            return result

        exchange.addBoth(stop_idle).addCallback(build).addCallbacks(done, failed).addErrback(
            lambda f: log.failure("Bug: transfer of {zone}", f, zone=str(origin))
        )

    def _register(self, source: Source, attempt: int) -> None:
        """Signed root SOA query over TCP: a gitdns primary NOTIFYs us for every zone."""
        query = self._soa_query(dns.name.root, source.key)
        d = query_tcp(self.clock, source.address, self.config.primary_port, query, SOA_TIMEOUT)

        def answered(response: dns.message.Message) -> None:
            log.info(
                "Registered with primary {peer} for all zones (key {key}): {rcode}",
                peer=source.address,
                key=str(source.key.name),
                rcode=dns.rcode.to_text(response.rcode()),
            )
            self._again(REGISTER_INTERVAL, source, 0)

        def failed(failure: Failure) -> None:
            delay = REGISTER_RETRY[min(attempt, len(REGISTER_RETRY) - 1)]
            log.warn(
                "Root SOA query to {peer} failed: {reason}; again in {delay} s",
                peer=source.address,
                reason=failure.getErrorMessage(),
                delay=delay,
            )
            self._again(delay, source, attempt + 1)

        d.addCallbacks(answered, failed)

    def _again(self, delay: float, source: Source, attempt: int) -> None:
        self._register_calls = [call for call in self._register_calls if call.active()]
        if self.running:
            self._register_calls.append(
                self.clock.callLater(delay, self._register, source, attempt)
            )

    # -- serving --------------------------------------------------------------------

    def _served(self, carried: Mapping[dns.name.Name, _Carried]) -> Served:
        zones = {origin: c.zone for origin, c in carried.items() if c.zone is not None}
        return Served(
            zones=ZoneSet(zones),
            keyring=tsig_keyring(self.keys),
            may=may,
            expired=frozenset(
                origin for origin, c in carried.items() if c.state.expired and c.zone is not None
            ),
            accepts_updates=False,
            journal={
                origin: c.journal
                for origin, c in carried.items()
                if c.zone is not None and c.journal
            },
            notify_sources={
                origin: frozenset(source.address for source in c.sources)
                for origin, c in carried.items()
            },
        )

    def _publish(self, changed: set[dns.name.Name], at_once: bool = False) -> None:
        """Serve what we carry now; answers cached for the changed zones are dropped,
        and so are their prerendered answers (built again once they stay unchanged,
        at once at start-up; never for a zone past its expire time, which answers
        SERVFAIL)."""
        served = self._served(self.carried)
        result = LoadResult(served.zones, [], frozenset(changed))
        self.prerenderer.swap(served, result, at_once=at_once)

    def _zones_changed(self, result: LoadResult, previous: Served) -> None:
        if result.zoneset.zones.keys() != previous.zones.zones.keys():
            self.cache.clear()
        else:
            self.cache.invalidate(result.changed)

    # -- disk -----------------------------------------------------------------------

    def _save_zone(self, carried: _Carried, zone: Zone) -> None:
        # Rendering and writing a large zone takes a while: off the reactor thread,
        # one write per zone at a time so that the newest copy is written last.
        configured, contact = carried.configured, self.clock.seconds()

        def write(_: object) -> defer.Deferred[None]:
            return threads.deferToThread(self._write_zone, zone, contact, configured)

        carried.writing = carried.writing.addCallback(write).addErrback(
            self._write_failed, zone.origin
        )

    def _write_zone(self, zone: Zone, contact: float, configured: bool) -> None:
        started = time.monotonic()
        self.store.save_zone(zone)
        self.store.save_state(zone.origin, zone.serial, contact, configured)
        log.debug(
            "Wrote {zone} serial {serial} in {elapsed:.3f} s",
            zone=str(zone.origin),
            serial=zone.serial,
            elapsed=time.monotonic() - started,
        )

    def _save_state(self, carried: _Carried) -> None:
        copy, zone = carried.state.copy, carried.zone
        if copy is None or zone is None or copy.serial != zone.serial:
            return  # a new zone: its state is written with it
        origin, configured = carried.origin, carried.configured

        def write(_: object) -> None:
            self.store.save_state(origin, copy.serial, copy.contact, configured)

        carried.writing = carried.writing.addCallback(write).addErrback(self._write_failed, origin)

    def _write_failed(self, failure: Failure, origin: dns.name.Name) -> None:
        log.error(
            "Could not write {zone} to {directory}: {reason}",
            zone=str(origin),
            directory=self.config.data_dir,
            reason=failure.getErrorMessage(),
        )


def make_secondary(options: Mapping[str, Any]) -> Secondary:
    """The service for twistd's options."""
    config = SecondaryConfig(
        keys=options["key"],
        listen=options["listen"]
        or SecondaryConfig.__dataclass_fields__["listen"].default_factory(),
        data_dir=options["data-dir"],
        primary_port=options["primary-port"],
        metrics=options["metrics"],
    )
    secondary = Secondary(config)
    secondary.prepare()
    give_away_to_twistd_user(options, config.data_dir)
    return secondary
