"""Answers rendered ahead of the queries, one table per zone version.

A big zone queried at random names misses the response cache nearly every time, and
resolving and rendering an answer costs several times a cache hit. A Table holds a
zone version's answers as gitdns.plain renders them, keyed by the owner's name in
lower-case wire form: a query it answers costs a dict lookup and a join of bytes, with
the request's ID, RD and CD bits, question (in the case it was sent) and EDNS spliced
in. Names that do not exist and types a name does not have are answered from the
zone's SOA, rendered once per question length. Whatever a table cannot answer exactly
(and whatever does not fit the client's limit) is left to the general path: None.

A table is built from one Zone object and is used only while that object is served.
Its answers never draw on another zone's data (an answer that does is left out), but
some rely on a name being in none of our zones (a CNAME or MX target elsewhere): those
names are kept, and the table is dropped when a zone is added or removed above one.

Each value is a sequence of records: a type (2 bytes), a size (2 bytes) and that many
bytes of answer. An answer is the response's flags (QR, AA, RCODE), ANCOUNT, NSCOUNT,
ARCOUNT without and with an OPT record (2 bytes each), then the sections after the
question. Type 0 stands for every type not listed; an answer of size 0 means "not
here, ask resolve()". A name without a record for the type asked holds no data of that
type: NODATA. Records whose RRsets hold more than one record are left out (size 0):
the general path shuffles them at each rendering, and a table answering one order for
as long as the zone version lives would undo that rotation for every client.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

import dns.name
import dns.rdatatype
import dns.rrset

from gitdns.answer import Answer, additional_targets, resolve
from gitdns.names import closest, name_from_labels
from gitdns.plain import (
    IN,
    OPT_RECORD,
    RDATA_WRITERS,
    RR_HEAD,
    PlainQuery,
    question_compression,
    write_rrset,
    write_sections,
)
from gitdns.zones import Zone, ZoneSet

CNAME = dns.rdatatype.CNAME
# Types whose answers bring addresses of the names they hold (resolve's additional).
_WITH_ADDITIONAL = frozenset({dns.rdatatype.NS, dns.rdatatype.MX, dns.rdatatype.SRV})
# A type no record has: resolve()'s answer for every type a name does not hold.
_UNHELD = 65534
# Left to resolve(): ANY takes every RRset, DS is answered above a zone cut.
_RESOLVED = frozenset(rdtype.to_bytes(2, "big") for rdtype in (dns.rdatatype.ANY, dns.rdatatype.DS))
_EVERY_TYPE = b"\x00\x00"
_UNANSWERED = b""
# The whole name left to resolve(): every type, size 0.
UNANSWERABLE = _EVERY_TYPE + b"\x00\x00"
_QUESTION = b"\x00\x00\x00\x00"
_QDCOUNT = b"\x00\x01"
# Flags and counts of negative answers: QR, AA, RCODE; the SOA in the authority section.
_NODATA = b"\x84\x00\x00\x00\x00\x01\x00\x00\x00\x01"
_NXDOMAIN = b"\x84\x03\x00\x00\x00\x01\x00\x00\x00\x01"
# QR, AA, NOERROR; one answer record, none in the other sections.
_ONE_ANSWER = b"\x84\x00\x00\x01\x00\x00\x00\x00\x00\x01"
_QUESTION_POINTER = b"\xc0\x0c"
_NAMELESS = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT})
_QR, _AA = 0x8000, 0x0400
_LENGTH = [bytes((length,)) for length in range(64)]
_NO_ZONE = object()
CHUNK = 1024


def wire_key(name: dns.name.Name) -> bytes:
    """name in lower-case wire form, uncompressed."""
    return b"".join([_LENGTH[len(label)] + label for label in name.labels]).lower()


class Table:
    """One zone version's prerendered answers (see the module docstring)."""

    __slots__ = (
        "_negative",
        "entries",
        "external",
        "key",
        "negative_soa",
        "origins",
        "soa_names",
        "zone",
    )

    def __init__(
        self,
        zone: Zone,
        entries: dict[bytes, bytes],
        external: frozenset[bytes],
        soa_names: frozenset[bytes],
    ) -> None:
        self.zone = zone
        self.key = wire_key(zone.origin)
        # What the answers are drawn from (Reply.origins), made once.
        self.origins = frozenset((zone.origin,))
        self.entries = entries
        # Names (wire_key) outside our zones that answers rely on staying so.
        self.external = external
        # Names below the apex in the SOA record: a question at or below one of them
        # compresses the SOA against itself, so its negative answers are not here.
        self.soa_names = soa_names
        self.negative_soa = zone.negative_soa
        # Question name length -> the sections of a negative answer, made when asked:
        # the SOA's names are pointers into the question, which moves with its length.
        self._negative: dict[int, bytes] = {}

    def __repr__(self) -> str:
        return f"<Table {self.zone.origin} serial {self.zone.serial}, {len(self.entries)} names>"

    def respond(self, wire: bytes, query: PlainQuery, qname: bytes, limit: int) -> bytes | None:
        """The response to wire, whose lower-case question name qname is in this zone."""
        end = query.question_end
        qtype = wire[end - 4 : end - 2]
        value = self.entries.get(qname)
        if value is None:
            head = self._nonexistent(qname)
            if head is None:
                return None
            tail = self._negative_tail(len(qname))
        else:
            answer = _answer_for(value, qtype)
            if answer is None:
                head, tail = _NODATA, self._negative_tail(len(qname))
            elif not answer:
                return None
            else:
                head, tail = answer[:10], answer[10:]
        edns = query.payload is not None
        if end + len(tail) + (len(OPT_RECORD) if edns else 0) > limit:
            return None
        flags = bytes((head[0] | wire[2] & 0x01, head[1] | wire[3] & 0x10))
        if edns:
            parts = (wire[:2], flags, _QDCOUNT, head[2:6], head[8:10], wire[12:end], tail)
            return b"".join(parts) + OPT_RECORD
        return b"".join((wire[:2], flags, _QDCOUNT, head[2:8], wire[12:end], tail))

    def _nonexistent(self, qname: bytes) -> bytes | None:
        """NXDOMAIN's flags and counts for qname, which is no name of the zone, when no
        wildcard, delegation or SOA name is in the way."""
        entries = self.entries
        soa_names = self.soa_names
        name = qname
        while True:
            if name in soa_names:
                return None
            name = name[name[0] + 1 :]
            value = entries.get(name)
            if value is not None:
                break
        # name is the closest encloser (RFC 4592).
        if value == UNANSWERABLE or b"\x01*" + name in entries:
            return None
        if soa_names and _at_or_below_any(name, soa_names):
            return None
        return _NXDOMAIN

    def _negative_tail(self, length: int) -> bytes:
        tail = self._negative.get(length)
        if tail is None:
            # A question of that length ending in the apex: the SOA compresses against
            # the apex and its suffixes only (soa_names keeps the rest away).
            out = bytearray(12 + length + 4)
            key = self.key
            compress = {}
            offset = 0
            while key[offset]:
                compress[key[offset:]] = 12 + length - len(key) + offset
                offset += key[offset] + 1
            write_rrset(out, compress, self.negative_soa)
            tail = self._negative[length] = bytes(out[12 + length + 4 :])
        return tail


def _answer_for(value: bytes, qtype: bytes) -> bytes | None:
    """The answer value holds for qtype (or for every type), None if none."""
    offset = 0
    while offset < len(value):
        start = offset + 4
        end = start + (value[offset + 2] << 8 | value[offset + 3])
        rdtype = value[offset : offset + 2]
        if rdtype in (qtype, _EVERY_TYPE):
            return value[start:end]
        offset = end
    return None


def _at_or_below_any(key: bytes, names: Collection[bytes]) -> bool:
    """Whether the name of wire form key is one of names or below one."""
    offset = 0
    while key[offset]:
        if key[offset:] in names:
            return True
        offset += key[offset] + 1
    return False


def answer_prerendered(
    tables: Mapping[bytes, Table | None], wire: bytes, query: PlainQuery, limit: int
) -> tuple[bytes, frozenset[dns.name.Name]] | None:
    """The response to the plain query wire from its zone's table and the origin of
    that zone, or None.

    tables: every zone served, by wire_key of its origin, with its table or None.
    """
    end = query.question_end
    if wire[end - 4 : end - 2] in _RESOLVED:
        return None
    qname = wire[12 : end - 4].lower()
    offset = 0
    # The closest enclosing zone, as gitdns.names.closest finds it.
    while (table := tables.get(qname[offset:], _NO_ZONE)) is _NO_ZONE:
        if not qname[offset]:
            return None
        offset += qname[offset] + 1
    if not isinstance(table, Table):
        return None
    response = table.respond(wire, query, qname, limit)
    return None if response is None else (response, table.origins)


def build_table(
    zone: Zone, zoneset: ZoneSet, checkpoint: Callable[[], bool] = bool
) -> Table | None:
    """zone's table, for the zones of zoneset (zone among them). checkpoint() is called
    every CHUNK names (the caller's chance to let others run); the build stops, giving
    None, when it returns true."""
    builder = _Builder(zone, zoneset)
    entries: dict[bytes, bytes] = {}
    nodes = zone.nodes
    for count, (name, node) in enumerate(nodes.items()):
        if not count % CHUNK and checkpoint():
            return None
        key = wire_key(name)
        entries[key] = builder.value(name, key, node)
    if len(zone.names) > len(nodes):
        for name in zone.names:
            if name not in nodes:
                key = wire_key(name)
                entries[key] = builder.value(name, key, None)
    return Table(zone, entries, frozenset(builder.external), builder.soa_names)


class _Builder:
    def __init__(self, zone: Zone, zoneset: ZoneSet) -> None:
        self.zone = zone
        self.zoneset = zoneset
        self.origin = zone.origin
        self.depth = len(zone.origin.labels)
        self.external: set[bytes] = set()
        self._closest: dict[bytes, Zone | None] = {}
        self._origins = {zone.origin}
        soa = zone.soa[0]
        self.soa_names = frozenset(
            wire_key(suffix)
            for name in (soa.mname, soa.rname)
            for suffix in _name_suffixes(name)
            if suffix != zone.origin and suffix.is_subdomain(zone.origin)
        )
        # For bytes.endswith, which takes a tuple (an empty one matches nothing).
        self._soa_names = tuple(self.soa_names)

    def value(
        self, name: dns.name.Name, key: bytes, node: dict[int, dns.rrset.RRset] | None
    ) -> bytes:
        """The entry of name (key), whose node is node (None: an empty non-terminal)."""
        if self.zone.cuts and self._at_or_below_cut(name):
            return UNANSWERABLE
        records = []
        if node is not None and CNAME in node:
            types = self._chain_types(name)
            if types is None:
                return UNANSWERABLE
            for rdtype in sorted(types | {CNAME}):
                records.append(self._resolved(rdtype, key, name, rdtype))
            records.append(self._resolved(0, key, name, _UNHELD))
        else:
            for rdtype, rrset in (node or {}).items():
                if len(rrset) > 1:
                    records.append(rdtype.to_bytes(2, "big") + b"\x00\x00")
                elif rdtype in _NAMELESS:
                    records.append(_nameless_record(rdtype, rrset))
                elif rdtype in _WITH_ADDITIONAL and not self._targets_outside(rrset):
                    records.append(self._resolved(rdtype, key, name, rdtype))
                else:
                    records.append(_typed(rdtype, _rrset_alone(key, rrset)))
            if key.endswith(self._soa_names) and _at_or_below_any(key, self.soa_names):
                records.append(UNANSWERABLE)
        return b"".join(records)

    def _at_or_below_cut(self, name: dns.name.Name) -> bool:
        labels = name.labels
        cuts = self.zone.cuts
        return any(
            name_from_labels(labels[start:]) in cuts for start in range(len(labels) - self.depth)
        )

    def _zone_of(self, name: dns.name.Name) -> Zone | None:
        """The zone name is in (kept in external when none: answers rely on that)."""
        key = wire_key(name)
        try:
            return self._closest[key]
        except KeyError:
            found = self._closest[key] = closest(self.zoneset.zones, name)
            if found is None:
                self.external.add(key)
            return found

    def _targets_outside(self, rrset: dns.rrset.RRset) -> bool:
        """Whether the names rrset brings addresses for are in none of our zones."""
        return all(self._zone_of(target) is None for target in additional_targets(rrset))

    def _chain_types(self, name: dns.name.Name) -> set[int] | None:
        """The types held along name's CNAME chain (their answers differ from the
        rest's), or None when the chain is not followed here: through a name
        synthesised from a wildcard or that does not exist, or into another zone."""
        answer = resolve(self.zoneset, name, _UNHELD)
        nodes = self.zone.nodes
        types: set[int] = set()
        for rrset in answer.answer:
            if rrset.rdtype != CNAME or rrset.name not in nodes:
                return None
            types |= nodes[rrset.name].keys()
        target = answer.answer[-1][0].target
        found = self._zone_of(target)
        if found is None:
            return types
        if found is not self.zone:
            return None
        if target in nodes:
            return types | nodes[target].keys()
        return types if target in self.zone.names else None

    def _resolved(self, rdtype: int, key: bytes, name: dns.name.Name, qtype: int) -> bytes:
        """The record for rdtype of resolve()'s answer to name (key) and qtype."""
        answer = resolve(self.zoneset, name, qtype)
        return _typed(rdtype, self._render(key, answer) if self._own(answer) else _UNANSWERED)

    def _own(self, answer: Answer) -> bool:
        """Whether answer draws on this zone's data alone (its targets elsewhere being
        in none of our zones, which external keeps), one record per RRset."""
        if answer.origins != self._origins or answer.rcode > 15:
            return False
        sections = (answer.answer, answer.authority, answer.additional)
        if any(len(rrset) > 1 for section in sections for rrset in section):
            return False
        for rrset in answer.answer + answer.authority:
            targets = additional_targets(rrset)
            if rrset.rdtype == CNAME:
                targets = [rrset[0].target]
            for target in targets:
                found = self._zone_of(target)
                if found is not None and found is not self.zone:
                    return False
        return True

    def _render(self, key: bytes, answer: Answer) -> bytes:
        """answer to the name of key as a record's answer bytes (_UNANSWERED when it
        holds a type not written by gitdns.plain)."""
        out = bytearray(12) + key + _QUESTION
        counts = write_sections(out, question_compression(key), answer)
        if counts is None:
            return _UNANSWERED
        flags = _QR | answer.rcode | (_AA if answer.authoritative else 0)
        head = b"".join(number.to_bytes(2, "big") for number in (flags, *counts, counts[2] + 1))
        return head + out[12 + len(key) + 4 :]


def _name_suffixes(name: dns.name.Name) -> Iterable[dns.name.Name]:
    labels = name.labels
    return (name_from_labels(labels[start:]) for start in range(len(labels)))


def kept_tables(
    tables: Mapping[bytes, Table | None], zoneset: ZoneSet, changed: Collection[dns.name.Name]
) -> dict[bytes, Table | None]:
    """The tables for zoneset, whose zones differ from those tables was for in changed
    (added, removed or changed, as LoadResult.changed): every zone by wire_key of its
    origin, with its table when it is still right, else None (one to build)."""
    kept = dict(tables)
    moved = set()
    for origin in changed:
        key = wire_key(origin)
        known = key in kept
        if origin in zoneset.zones:
            kept[key] = None
        else:
            kept.pop(key, None)
        if known != (origin in zoneset.zones):
            moved.add(key)
    if moved:
        # Zones moved below a zone with a table, then tables relying on names below
        # a zone that moved (a walk up from each name, not a test of every pair).
        for key in moved:
            for suffix in _suffixes(key)[1:]:
                if kept.get(suffix) is not None:
                    kept[suffix] = None
        for key, table in kept.items():
            if table is not None and _outside_moved(table, moved):
                kept[key] = None
    return kept


def still_served(table: Table, zoneset: ZoneSet, built_for: ZoneSet) -> bool:
    """Whether table, built for the zones of built_for, is right for those of zoneset."""
    if zoneset.zones.get(table.zone.origin) is not table.zone:
        return False
    if zoneset is built_for or zoneset.zones.keys() == built_for.zones.keys():
        return True
    moved = {wire_key(origin) for origin in zoneset.zones.keys() ^ built_for.zones.keys()}
    nested = any(table.key in _suffixes(key)[1:] for key in moved)
    return not nested and not _outside_moved(table, moved)


def _outside_moved(table: Table, moved: set[bytes]) -> bool:
    """Whether a name table relies on being outside our zones is at or below one of moved."""
    return any(suffix in moved for name in table.external for suffix in _suffixes(name))


def _typed(rdtype: int, answer: bytes) -> bytes:
    return rdtype.to_bytes(2, "big") + len(answer).to_bytes(2, "big") + answer


def _rrset_alone(key: bytes, rrset: dns.rrset.RRset) -> bytes:
    """The answer bytes whose answer section is rrset alone, owned by the name of key
    (as _Builder._render makes them, without an Answer to go through)."""
    out = bytearray(12) + key + _QUESTION
    if write_rrset(out, question_compression(key), rrset) is None:
        return _UNANSWERED
    return _ONE_ANSWER + out[12 + len(key) + 4 :]


def _nameless_record(rdtype: int, rrset: dns.rrset.RRset) -> bytes:
    """The record of a one-record RRset of a type whose data holds no names, as
    _Builder._render makes it of resolve()'s answer, the bulk of a big zone made
    directly: its owner is the question's name, a pointer to it."""
    data = bytearray()
    RDATA_WRITERS[rdtype](data, {}, next(iter(rrset)))  # type: ignore[misc]
    size = 10 + 2 + RR_HEAD.size + 2 + len(data)
    return b"".join(
        (
            rdtype.to_bytes(2, "big"),
            size.to_bytes(2, "big"),
            _ONE_ANSWER,
            _QUESTION_POINTER,
            RR_HEAD.pack(rdtype, IN, rrset.ttl),
            len(data).to_bytes(2, "big"),
            data,
        )
    )


def _suffixes(key: bytes) -> list[bytes]:
    """The wire form key and each of its suffixes, the root last."""
    suffixes = [key]
    offset = 0
    while key[offset]:
        offset += key[offset] + 1
        suffixes.append(key[offset:])
    return suffixes
