"""Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995) as streams of messages.

Each message is signed when the request was (RFC 8945 5.3.1: every message of the
stream, the MAC chained from the previous one).

IXFR answers come from the journal: the differences between the versions of a zone
this server has served (no journal format of its own: they are computed from the
versions, as they are loaded from git or made by UPDATE).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.renderer
import dns.rrset

from gitdns.tsig import Signature, add_signature
from gitdns.update import serial_newer
from gitdns.zones import Zone, ZoneSet

# Below the 65535 maximum so that a TSIG record always fits behind the records.
MESSAGE_SIZE = 64000

Record = tuple[dns.name.Name, int, dns.rdata.Rdata]


@dataclass(frozen=True)
class Delta:
    """How one version of a zone became the next (an IXFR difference sequence element)."""

    old_soa: dns.rrset.RRset
    new_soa: dns.rrset.RRset
    removed: tuple[Record, ...]
    added: tuple[Record, ...]

    @property
    def old_serial(self) -> int:
        return self.old_soa[0].serial

    @property
    def new_serial(self) -> int:
        return self.new_soa[0].serial

    @property
    def size(self) -> int:
        return len(self.removed) + len(self.added) + 2


def _without_soa(records: Iterable[Record]) -> tuple[Record, ...]:
    return tuple(record for record in records if record[2].rdtype != dns.rdatatype.SOA)


def delta(old: Zone, new: Zone, removed: Iterable[Record], added: Iterable[Record]) -> Delta:
    """A Delta from known changes (an UPDATE's); the SOA records are the deltas' frame."""
    return Delta(old.soa, new.soa, _without_soa(removed), _without_soa(added))


def zone_delta(old: Zone, new: Zone, names: Iterable[dns.name.Name] | None = None) -> Delta:
    """The difference of two versions, node by node (unchanged nodes are shared or equal);
    only at names, when the change is known to be there."""
    if names is None:
        removed = _missing(old.nodes.items(), new.nodes)
        added = _missing(new.nodes.items(), old.nodes)
    else:
        names = list(names)
        removed = _missing(((n, old.nodes.get(n, {})) for n in names), new.nodes)
        added = _missing(((n, new.nodes.get(n, {})) for n in names), old.nodes)
    return delta(old, new, removed, added)


def _missing(
    nodes: Iterable[tuple[dns.name.Name, Mapping[int, dns.rrset.RRset]]],
    others: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]],
) -> list[Record]:
    """The records of nodes that others lack at the same name (TTL included)."""
    missing: list[Record] = []
    for name, node in nodes:
        other = others.get(name, {})
        if other is node:
            continue
        for rdtype, rrset in node.items():
            if other.get(rdtype) != rrset or other[rdtype].ttl != rrset.ttl:
                missing += _split(rrset, other.get(rdtype))
    return missing


def _split(rrset: dns.rrset.RRset, other: dns.rrset.RRset | None) -> list[Record]:
    """Records of rrset not in other (all of them when the TTL differs)."""
    keep = set(other) if other is not None and other.ttl == rrset.ttl else set()
    return [(rrset.name, rrset.ttl, rdata) for rdata in rrset if rdata not in keep]


# Differences kept per zone for IXFR.
JOURNAL_LENGTH = 100


def extend_journal(
    journal: Mapping[dns.name.Name, tuple[Delta, ...]],
    zones: ZoneSet,
    deltas: Mapping[dns.name.Name, Delta],
) -> dict[dns.name.Name, tuple[Delta, ...]]:
    """The IXFR journal after a reload: each zone's differences, oldest first, bounded.

    A change that kept the serial breaks the chain (one serial, two contents): that
    zone's journal starts over, and clients asking from older serials get AXFR-style.
    Costs what the journal and the changes hold, not the number of zones.
    """
    served = zones.zones
    extended = {origin: steps for origin, steps in journal.items() if origin in served}
    for origin, step in deltas.items():
        zone = served.get(origin)
        if zone is None:
            continue
        steps = extended.pop(origin, ())
        steps = (*steps, step) if serial_newer(step.new_serial, step.old_serial) else ()
        # Keep differences while they stay smaller than the zone (else AXFR is
        # better); its number of names stands in for its size, at no cost.
        while len(steps) > JOURNAL_LENGTH or (
            len(steps) > 1 and sum(s.size for s in steps) > len(zone.nodes)
        ):
            steps = steps[1:]
        if steps:
            extended[origin] = steps
    return extended


def condense(deltas: Sequence[Delta]) -> Delta:
    """One Delta with the net effect of a sequence (RFC 1995 allows either form)."""
    removed: Counter = Counter()
    added: Counter = Counter()
    for step in deltas:
        for record in step.removed:
            if added[record]:
                added[record] -= 1
            else:
                removed[record] += 1
        for record in step.added:
            if removed[record]:
                removed[record] -= 1
            else:
                added[record] += 1
    return Delta(
        deltas[0].old_soa, deltas[-1].new_soa, tuple(removed.elements()), tuple(added.elements())
    )


def _records(zone: Zone) -> Iterator[dns.rrset.RRset]:
    yield zone.soa
    for rrset in zone.rrsets():
        if rrset is not zone.soa:
            yield rrset
    yield zone.soa


def _grouped(records: Iterable[Record]) -> Iterator[dns.rrset.RRset]:
    """Records as RRsets, consecutive records of one name, type and TTL together."""
    current: dns.rrset.RRset | None = None
    for name, ttl, rdata in records:
        if (
            current is not None
            and current.name == name
            and current.rdtype == rdata.rdtype
            and current.ttl == ttl
        ):
            current.add(rdata)
            continue
        if current is not None:
            yield current
        current = dns.rrset.from_rdata(name, ttl, rdata)
    if current is not None:
        yield current


def _ixfr_records(zone: Zone, deltas: Sequence[Delta]) -> Iterator[dns.rrset.RRset]:
    yield zone.soa
    for step in deltas:
        yield step.old_soa
        yield from _grouped(step.removed)
        yield step.new_soa
        yield from _grouped(step.added)
    yield zone.soa


def ixfr_plan(zone: Zone, journal: Sequence[Delta], serial: int) -> list[Delta] | None:
    """The differences to send a client at serial, or None for an AXFR-style answer.

    A sequence from the journal, or its condensed form when that is smaller; None when
    the serial is not in the journal or the difference is not smaller than the zone.
    """
    start = next((i for i, step in enumerate(journal) if step.old_serial == serial), None)
    if start is None:
        return None
    sequence = list(journal[start:])
    if sequence[-1].new_serial != zone.serial:
        return None
    condensed = condense(sequence)
    best = min([sequence, [condensed]], key=lambda steps: sum(step.size for step in steps))
    records = sum(len(rrset) for rrset in zone.rrsets())
    if sum(step.size for step in best) >= records:
        return None
    return best


def ixfr_messages(
    zone: Zone,
    deltas: Sequence[Delta],
    query: dns.message.Message,
    signature: Signature | None,
    now: int,
) -> Iterator[bytes]:
    """The IXFR answer made of deltas (RFC 1995 4); no deltas: the SOA alone (current)."""
    records = _ixfr_records(zone, deltas) if deltas else iter([zone.soa])
    return _stream(records, query, signature, now)


def axfr_messages(
    zone: Zone, query: dns.message.Message, signature: Signature | None, now: int
) -> Iterator[bytes]:
    """The AXFR answer to query (AXFR-style for IXFR) as wire messages."""
    return _stream(_records(zone), query, signature, now)


def _stream(
    records: Iterator[dns.rrset.RRset],
    query: dns.message.Message,
    signature: Signature | None,
    now: int,
) -> Iterator[bytes]:
    """RRsets packed into as few messages as fit; the question goes in the first only."""
    flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
    ctx = None
    reserve = signature.reserve() if signature else 0

    def start(with_question: bool) -> dns.renderer.Renderer:
        renderer = dns.renderer.Renderer(query.id, flags, MESSAGE_SIZE)
        renderer.reserve(reserve)
        if with_question:
            question = query.question[0]
            renderer.add_question(question.name, question.rdtype, question.rdclass)
        return renderer

    def finish(renderer: dns.renderer.Renderer) -> bytes:
        nonlocal ctx
        renderer.release_reserved()
        renderer.write_header()
        if signature is not None:
            ctx = add_signature(renderer, signature, now, ctx)
        return renderer.get_wire()

    renderer = start(with_question=True)
    for rrset in records:
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)
            continue
        except dns.exception.TooBig:
            pass
        if renderer.counts[dns.renderer.ANSWER]:
            yield finish(renderer)
            renderer = start(with_question=False)
            try:
                renderer.add_rrset(dns.renderer.ANSWER, rrset)
                continue
            except dns.exception.TooBig:
                pass
        # An RRset larger than a message goes record by record.
        for rdata in rrset:
            single = dns.rrset.from_rdata(rrset.name, rrset.ttl, rdata)
            try:
                renderer.add_rrset(dns.renderer.ANSWER, single)
            except dns.exception.TooBig:
                yield finish(renderer)
                renderer = start(with_question=False)
                renderer.add_rrset(dns.renderer.ANSWER, single)
    yield finish(renderer)
