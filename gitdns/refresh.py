"""A secondary's zone maintenance (RFC 1034 4.3.5, RFC 1996): pure, events in, actions out.

Per zone, `ZoneRefresh` says when to ask the primary for its SOA, when to transfer
(IXFR when we hold a copy, AXFR when not or when IXFR failed), when the copy expires
(answered SERVFAIL) and when it is good again. The shell (gitdns/secondary.py) runs
the actions with real sockets and timers and feeds back what happened, with `now`.

`Incoming` is the other pure half: one inbound transfer, wire messages in (TSIG
checked on each, as dns.query.inbound_xfr does), a new `Zone` out, applied by
`dns.xfr.Inbound` to a transaction over our immutable zone, so a transfer that fails
halfway changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.transaction
import dns.tsig
import dns.xfr

from gitdns.update import serial_newer, successor
from gitdns.xfr import Delta, zone_delta
from gitdns.zones import Zone

# Before we hold a copy there is no SOA to take retry from: retry soon, backing off.
FIRST_RETRY = 2.0
LONGEST_RETRY = 300.0
# A zone with refresh or retry 0 would have us query the primary in a loop.
SHORTEST_INTERVAL = 1.0


@dataclass(frozen=True)
class Timers:
    """The SOA fields that drive a secondary (seconds)."""

    refresh: float
    retry: float
    expire: float

    @classmethod
    def of(cls, zone: Zone) -> Timers:
        soa = zone.soa[0]
        return cls(float(soa.refresh), float(soa.retry), float(soa.expire))


@dataclass(frozen=True)
class Copy:
    """A copy we hold (e.g. loaded from disk): its serial, timers and last contact."""

    serial: int
    timers: Timers
    # When the primary last confirmed it (SOA answer or transfer), seconds since epoch.
    contact: float


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True)
class SoaAnswered:
    """The primary answered our SOA query authoritatively with this serial."""

    serial: int


@dataclass(frozen=True)
class SoaFailed:
    """No usable SOA answer: timeout, TSIG failure, not authoritative."""

    reason: str = ""


@dataclass(frozen=True)
class ZoneGone:
    """The primary says the zone is not (or no longer) its own: NOTAUTH or REFUSED."""


@dataclass(frozen=True)
class TransferDone:
    """A transfer completed; copy is what we hold now (same serial: nothing was new)."""

    copy: Copy


@dataclass(frozen=True)
class TransferFailed:
    reason: str = ""


@dataclass(frozen=True)
class Notified:
    """An accepted NOTIFY (RFC 1996 3.11): check the primary at once."""

    serial: int | None = None


@dataclass(frozen=True)
class Timer:
    """The wake-up asked for by the last Wake action is due."""


Event = SoaAnswered | SoaFailed | ZoneGone | TransferDone | TransferFailed | Notified | Timer


# ---------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class QuerySoa:
    """Ask the primary for the zone's SOA; answer with SoaAnswered/SoaFailed/ZoneGone."""


@dataclass(frozen=True)
class Transfer:
    """Transfer the zone: kind "IXFR" from serial, or "AXFR" (serial None)."""

    kind: str
    serial: int | None


@dataclass(frozen=True)
class Wake:
    """Feed Timer at this time (seconds since epoch); None: no wake-up needed."""

    at: float | None


@dataclass(frozen=True)
class Expire:
    """Our copy is past its expire time: answer SERVFAIL for the zone."""


@dataclass(frozen=True)
class Unexpire:
    """The primary confirmed our copy again: serve it."""


@dataclass(frozen=True)
class Drop:
    """Stop serving the zone and forget the copy; forget: forget the zone altogether
    (one learned from a NOTIFY), else keep asking the primary for it."""

    forget: bool


Action = QuerySoa | Transfer | Wake | Expire | Unexpire | Drop

IXFR = "IXFR"
AXFR = "AXFR"


# ---------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class ZoneRefresh:
    """Where the maintenance of one zone stands."""

    zone: dns.name.Name
    copy: Copy | None = None
    expired: bool = False
    # What we wait for: None, "SOA", IXFR or AXFR.
    busy: str | None = None
    # When the next SOA query is due (when not busy).
    due: float = 0.0
    # Failed attempts in a row (backoff before we hold a copy).
    failures: int = 0
    # A NOTIFY came while busy: check again when done (its change may be newer).
    again: bool = False
    # Given on the command line (kept when the primary drops it) or learned by NOTIFY.
    configured: bool = True
    # Learned zone dropped: nothing more to do.
    forgotten: bool = False

    @property
    def expires(self) -> float | None:
        if self.copy is None:
            return None
        return self.copy.contact + self.copy.timers.expire

    def retry_delay(self) -> float:
        if self.copy is not None:
            return max(SHORTEST_INTERVAL, self.copy.timers.retry)
        return min(FIRST_RETRY * 2 ** max(self.failures - 1, 0), LONGEST_RETRY)


def start(
    zone: dns.name.Name, now: float, copy: Copy | None = None, *, configured: bool = True
) -> tuple[ZoneRefresh, list[Action]]:
    """Begin maintaining zone: query the primary at once; a copy past expire is not served."""
    state = ZoneRefresh(zone, copy, configured=configured, due=now)
    actions: list[Action] = []
    state = _check_expire(state, now, actions)
    return _finish(*_query(state, actions))


def handle(state: ZoneRefresh, event: Event, now: float) -> tuple[ZoneRefresh, list[Action]]:
    """The next state and what to do, for event happening at now."""
    actions: list[Action] = []
    if state.forgotten:
        return state, actions
    if isinstance(event, SoaAnswered):
        if state.busy != "SOA":
            return state, actions  # a late answer to a query we no longer wait for
        if state.copy is None:
            state = replace(state, busy=AXFR)
            actions.append(Transfer(AXFR, None))
        elif serial_newer(event.serial, state.copy.serial):
            state = replace(state, busy=IXFR)
            actions.append(Transfer(IXFR, state.copy.serial))
        else:
            # Current (or the primary went back: RFC 1982 says do nothing): confirmed.
            state = _confirmed(replace(state, busy=None), state.copy, now, actions)
    elif isinstance(event, SoaFailed):
        if state.busy != "SOA":
            return state, actions
        state = _failed(state, now, actions)
    elif isinstance(event, ZoneGone):
        if state.busy != "SOA":
            return state, actions
        actions.append(Drop(forget=not state.configured))
        if not state.configured:
            return replace(state, forgotten=True, busy=None), [*actions, Wake(None)]
        state = replace(state, copy=None, expired=False, busy=None, failures=state.failures + 1)
        state = replace(state, due=now + state.retry_delay())
    elif isinstance(event, TransferDone):
        if state.busy not in (IXFR, AXFR):
            return state, actions
        state = _confirmed(replace(state, busy=None), event.copy, now, actions)
    elif isinstance(event, TransferFailed):
        if state.busy == IXFR:
            # RFC 1995 4: a client that cannot use the IXFR falls back to AXFR.
            state = replace(state, busy=AXFR)
            actions.append(Transfer(AXFR, None))
        elif state.busy == AXFR:
            state = _failed(state, now, actions)
        else:
            return state, actions
    elif isinstance(event, Notified):
        if state.busy is not None:
            state = replace(state, again=True)
        else:
            state, actions = _query(state, actions)
    elif isinstance(event, Timer):
        state = _check_expire(state, now, actions)
        if state.busy is None and now >= state.due:
            state, actions = _query(state, actions)
    return _finish(state, actions)


def _query(state: ZoneRefresh, actions: list[Action]) -> tuple[ZoneRefresh, list[Action]]:
    actions.append(QuerySoa())
    return replace(state, busy="SOA", again=False), actions


def _confirmed(state: ZoneRefresh, copy: Copy, now: float, actions: list[Action]) -> ZoneRefresh:
    """The primary confirmed copy at now: serve it, next check after refresh."""
    copy = replace(copy, contact=now)
    if state.expired:
        actions.append(Unexpire())
    state = replace(
        state,
        copy=copy,
        expired=False,
        failures=0,
        due=now + max(SHORTEST_INTERVAL, copy.timers.refresh),
    )
    if state.again:
        state, _ = _query(state, actions)
    return state


def _failed(state: ZoneRefresh, now: float, actions: list[Action]) -> ZoneRefresh:
    state = replace(state, busy=None, failures=state.failures + 1)
    state = replace(state, due=now + state.retry_delay())
    state = _check_expire(state, now, actions)
    if state.again:
        # A NOTIFY since we asked: the primary is up now, try again at once.
        state, _ = _query(state, actions)
    return state


def _check_expire(state: ZoneRefresh, now: float, actions: list[Action]) -> ZoneRefresh:
    expires = state.expires
    if expires is not None and not state.expired and now >= expires:
        actions.append(Expire())
        return replace(state, expired=True)
    return state


def _finish(state: ZoneRefresh, actions: list[Action]) -> tuple[ZoneRefresh, list[Action]]:
    """Every step ends by saying when to wake up next: the next check or the expiry."""
    times = []
    if state.busy is None:
        times.append(state.due)
    if state.expires is not None and not state.expired:
        times.append(state.expires)
    actions.append(Wake(min(times) if times else None))
    return state, actions


# ---------------------------------------------------------------------------- transfers in


def transfer_query(
    zone: dns.name.Name, kind: str, serial: int | None, key: dns.tsig.Key | None
) -> dns.message.Message:
    """An AXFR, or IXFR from serial (RFC 1995 3: our SOA in the authority section)."""
    rdtype = dns.rdatatype.IXFR if kind == IXFR else dns.rdatatype.AXFR
    query = dns.message.make_query(zone, rdtype)
    query.flags &= ~dns.flags.RD
    if rdtype == dns.rdatatype.IXFR:
        if serial is None:
            raise ValueError("IXFR needs the serial we hold")
        soa = dns.rrset.from_text(zone, 0, "IN", "SOA", f". . {serial} 0 0 0 0")
        query.authority.append(soa)
    if key is not None:
        query.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
    return query


class Incoming:
    """One inbound transfer. `wire` is the request to send; feed each response message
    to `receive` until it returns True; then `build()` makes the new zone (None when
    the primary had nothing newer). Raises on any error (rcode, TSIG, malformed stream,
    a zone without SOA or NS)."""

    def __init__(self, query: dns.message.Message, base: Zone | None) -> None:
        self.query = query
        # Rendering signs the query and sets query.mac, which the answers chain from.
        self.wire = query.to_wire()
        question = query.question[0]
        self.origin = question.name
        self.ixfr = question.rdtype == dns.rdatatype.IXFR
        serial = None
        if self.ixfr:
            if base is None:
                raise ValueError("IXFR needs the zone we hold")
            serial = base.serial
        self.manager = _Transactions(self.origin, base)
        self.inbound = dns.xfr.Inbound(self.manager, question.rdtype, serial)
        self._tsig_ctx: object = None
        self.messages = 0
        self.size = 0
        self.records = 0

    def receive(self, wire: bytes) -> bool:
        message = dns.message.from_wire(
            wire,
            keyring=self.query.keyring,
            request_mac=self.query.mac,
            xfr=True,
            origin=None,  # absolute names, as our zones hold them
            tsig_ctx=self._tsig_ctx,
            multi=True,
            one_rr_per_rrset=self.ixfr,
        )
        if not self.query.is_response(message, xfr_continuation=self.messages > 0):
            raise dns.exception.FormError("a response that does not match the transfer request")
        self._tsig_ctx = message.tsig_ctx
        self.messages += 1
        self.size += len(wire)
        self.records += sum(len(rrset) for rrset in message.answer)
        try:
            done = self.inbound.process_message(message)
        except BaseException:
            self.close()
            raise
        if done:
            self.close()
        return done

    def close(self) -> None:
        """Abandon whatever is not committed (a transfer cut short changes nothing)."""
        txn, self.inbound.txn = self.inbound.txn, None
        if txn is not None:
            with contextlib.suppress(dns.transaction.AlreadyEnded):  # a failed commit
                txn.rollback()

    def build(self) -> Zone | None:
        """The zone after the committed transfer. Indexing a large zone takes a while:
        the shell may run this in a thread (it only reads the base and the changes)."""
        committed = self.manager.committed
        if committed is None:
            return None
        base = self.manager.base
        if committed.replacement or base is None:
            return Zone(self.origin, committed.rrsets())
        # An incremental change: only the names it wrote are rebuilt.
        touched = {
            name: {rrset.rdtype: rrset for rrset in _merge(name, rdatasets)}
            for name, rdatasets in committed.written.items()
        }
        return successor(base, touched)

    def difference(self, new: Zone) -> Delta | None:
        """How the zone we held became new, when an IXFR said so (for our own journal);
        None after a whole zone came."""
        committed, base = self.manager.committed, self.manager.base
        if committed is None or committed.replacement or base is None:
            return None
        return zone_delta(base, new, committed.written)

    @property
    def incremental(self) -> bool:
        """False when an IXFR was answered AXFR-style (the whole zone)."""
        return self.ixfr and self.inbound.incremental


class _Transactions(dns.transaction.TransactionManager):
    """dnspython's transaction interface over our immutable Zone: the changes are kept
    beside the base (never modified); the committed ones make the new Zone."""

    def __init__(self, origin: dns.name.Name, base: Zone | None) -> None:
        self.origin = origin
        self.base = base
        self.committed: _Transaction | None = None

    def reader(self) -> dns.transaction.Transaction:
        return _Transaction(self, replacement=False, read_only=True)

    def writer(self, replacement: bool = False) -> dns.transaction.Transaction:
        return _Transaction(self, replacement=replacement)

    def origin_information(self) -> tuple[dns.name.Name, bool, dns.name.Name]:
        return self.origin, False, self.origin

    def get_class(self) -> dns.rdataclass.RdataClass:
        return dns.rdataclass.IN


RdatasetKey = tuple[int, int]  # (rdtype, covers)


def _split(node: dict[int, dns.rrset.RRset]) -> dict[RdatasetKey, dns.rdataset.Rdataset]:
    return {(rrset.rdtype, rrset.covers): rrset for rrset in node.values()}


class _Transaction(dns.transaction.Transaction):
    manager: _Transactions

    def __init__(self, manager: _Transactions, replacement: bool, read_only: bool = False):
        super().__init__(manager, replacement, read_only)
        base = None if replacement else manager.base
        self._base: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = base.nodes if base else {}
        # Names written in this transaction: their whole new content (copy on write).
        self.written: dict[dns.name.Name, dict[RdatasetKey, dns.rdataset.Rdataset]] = {}

    def add(self, *args: Any) -> None:
        # dns.xfr.Inbound adds each RRset of the message as it was parsed: when nothing
        # is there yet, keep that very object (dnspython would copy and rehash it).
        if len(args) == 2 and not self.read_only:
            name, rdataset = args
            if (
                isinstance(name, dns.name.Name)
                and isinstance(rdataset, dns.rrset.RRset)
                and rdataset.name == name
                and rdataset.rdclass == dns.rdataclass.IN
                and rdataset.rdtype != dns.rdatatype.SOA
                and self._get_rdataset(name, rdataset.rdtype, rdataset.covers) is None
            ):
                self._put_rdataset(name, rdataset)
                return
        super().add(*args)

    def _read(self, name: dns.name.Name) -> dict[RdatasetKey, dns.rdataset.Rdataset]:
        written = self.written.get(name)
        if written is not None:
            return written
        return _split(self._base.get(name, {}))

    def _write(self, name: dns.name.Name) -> dict[RdatasetKey, dns.rdataset.Rdataset]:
        if name not in self.written:
            self.written[name] = _split(self._base.get(name, {}))
        return self.written[name]

    def _get_rdataset(self, name, rdtype, covers):  # type: ignore[no-untyped-def]
        return self._read(name).get((rdtype, covers))

    def _put_rdataset(self, name, rdataset):  # type: ignore[no-untyped-def]
        self._write(name)[(rdataset.rdtype, rdataset.covers)] = rdataset

    def _delete_name(self, name):  # type: ignore[no-untyped-def]
        self.written[name] = {}

    def _delete_rdataset(self, name, rdtype, covers):  # type: ignore[no-untyped-def]
        self._write(name).pop((rdtype, covers), None)

    def _name_exists(self, name):  # type: ignore[no-untyped-def]
        return bool(self._read(name))

    def _changed(self):  # type: ignore[no-untyped-def]
        return bool(self.written) or self.replacement

    def _end_transaction(self, commit):  # type: ignore[no-untyped-def]
        if commit and not self.read_only:
            self.manager.committed = self

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        for name, node in self._base.items():
            if name not in self.written:
                yield from node.values()
        for name, rdatasets in self.written.items():
            yield from _merge(name, rdatasets)

    def _set_origin(self, origin):  # type: ignore[no-untyped-def]
        pass

    def _iterate_rdatasets(self):  # type: ignore[no-untyped-def]
        for name in self._iterate_names():
            for rdataset in self._read(name).values():
                yield name, rdataset

    def _iterate_names(self):  # type: ignore[no-untyped-def]
        for name in self._base:
            if name not in self.written:
                yield name
        for name, rdatasets in self.written.items():
            if rdatasets:
                yield name

    def _get_node(self, name):  # type: ignore[no-untyped-def]
        rdatasets = self._read(name)
        if not rdatasets:
            return None
        node = dns.node.Node()
        node.rdatasets.extend(rdatasets.values())
        return node


def _merge(
    name: dns.name.Name, rdatasets: dict[RdatasetKey, dns.rdataset.Rdataset]
) -> Iterator[dns.rrset.RRset]:
    """The RRsets of a name as Zone takes them (unchanged ones shared, never modified)."""
    for rdataset in rdatasets.values():
        if not rdataset:
            continue
        if isinstance(rdataset, dns.rrset.RRset) and rdataset.name == name:
            yield rdataset
        else:
            # The transaction's own rdataset, no longer used: hand its records over
            # rather than adding (and hashing) them one by one again.
            rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
            rrset.ttl = rdataset.ttl
            rrset.items = rdataset.items
            yield rrset
