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

An answer is a pair: its heads, the response's flags, QDCOUNT, ANCOUNT, NSCOUNT and
ARCOUNT for each kind of request (Heads), and its tail, the sections after the
question. Most names hold one type: their entry is bytes, the type, the index of its
heads in the table's list (heads are shared: few differ) and the tail; one object per
name keeps the table small. Others hold (None, answers by type, the answer to every
other type); an answer None means "not here, ask resolve()", NODATA that the name
holds no data of that type. Records whose RRsets hold more than one record are left
out: the general path shuffles them at each rendering, and a table answering one
order for as long as the zone version lives would undo that rotation for every
client.

The listeners (gitdns.server) call answer_from_tables for every request their
response cache misses, before the general path, and admit its answers to that cache
while it has room.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

import dns.name
import dns.rdatatype
import dns.rrset

from gitdns.answer import Answer, additional_targets, resolve
from gitdns.names import closest, name_from_labels, wire_key
from gitdns.plain import (
    COUNTS,
    COUNTS_EDNS,
    IN,
    META_TYPES,
    OPT_RECORD,
    OPT_SIZE,
    OPT_START,
    RDATA_WRITERS,
    RR_HEAD,
    TCP_LIMIT,
    TRANSFER_TYPES,
    UDP_PAYLOAD,
    plain_opt,
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
_RESOLVED = frozenset(
    rdtype.to_bytes(2, "big")
    for rdtype in (dns.rdatatype.ANY, dns.rdatatype.DS, *META_TYPES, *TRANSFER_TYPES)
)
_CLASS_IN = b"\x00\x01"
_EVERY_TYPE = b"\x00\x00"
_UNANSWERED = b""
# A record of the builder: every type left to resolve().
UNANSWERABLE = (_EVERY_TYPE, _UNANSWERED)
_QUESTION = b"\x00\x00\x00\x00"
_QDCOUNT = b"\x00\x01"
# Flags and counts of negative answers: QR, AA, RCODE; the SOA in the authority section.
_NODATA = b"\x84\x00\x00\x00\x00\x01\x00\x00\x00\x01"
_NXDOMAIN = b"\x84\x03\x00\x00\x00\x01\x00\x00\x00\x01"
# QR, AA, NOERROR; one answer record, none in the other sections.
_ONE_ANSWER = b"\x84\x00\x00\x01\x00\x00\x00\x00\x00\x01"
_QUESTION_POINTER = b"\xc0\x0c"
_NAMELESS = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT})
_QR, _AA, _RD, _CD = 0x8000, 0x0400, 0x0100, 0x0010

# The response's flags and counts for each kind of request (see make_heads).
Heads = tuple[bytes, ...]
# An answer: its Heads and the sections after the question.
Answered = tuple[Heads, bytes]
# (type, answer bytes) as the builder makes them (see _Builder._records).
Record = tuple[bytes, bytes]
# A name's entry (see the module docstring): type, index of its Heads and tail in one
# bytes, or (None, answers by type, the answer to every other type).
Entry = bytes | tuple[None, dict[bytes, "Answered | None"], object]
# Heads a table's bytes entries can index (one byte); past that, the tuple form.
_HEADS_INDEXED = 256


class _NoData:
    def __repr__(self) -> str:
        return "NODATA"


# An Entry's answer to a type the name does not hold.
NODATA = _NoData()
# A name left to resolve() altogether.
_UNANSWERABLE_ENTRY = (None, {}, None)
_NO_ZONE = object()
CHUNK = 1024


class Table:
    """One zone version's prerendered answers (see the module docstring)."""

    __slots__ = (
        "_enclosers",
        "_negative",
        "entries",
        "external",
        "heads",
        "key",
        "negative_soa",
        "soa_names",
        "zone",
    )

    def __init__(
        self,
        zone: Zone,
        entries: dict[bytes, Entry],
        heads: list[Heads],
        external: frozenset[bytes],
        soa_names: frozenset[bytes],
    ) -> None:
        self.zone = zone
        self.key = wire_key(zone.origin)
        self.entries = entries
        # The Heads that bytes entries index.
        self.heads = heads
        # Names (wire_key) outside our zones that answers rely on staying so.
        self.external = external
        # Names below the apex in the SOA record: a question at or below one of them
        # compresses the SOA against itself, so its negative answers are not here.
        self.soa_names = soa_names
        self.negative_soa = zone.negative_soa
        # Question name length -> the sections of a negative answer, made when asked:
        # the SOA's names are pointers into the question, which moves with its length.
        self._negative: dict[int, bytes] = {}
        # Closest enclosers -> whether a name below them that is not there does not
        # exist (made when asked, as _negative).
        self._enclosers: dict[bytes, bool] = {}

    def other(self, qname: bytes, qtype: bytes, entry: Entry | None) -> Answered | None:
        """The answer to qname (lower case) and qtype when entry, qname's, is not one
        of qtype alone: another type, several, or no name at all."""
        if qtype in _RESOLVED:
            return None
        if entry is None:
            # Longer than a name: the walk to the zone checked its labels, not that.
            if len(qname) <= 255 and self._nonexistent(qname):
                return _NXDOMAIN_HEADS, self._negative_tail(len(qname))
            return None
        if not isinstance(entry, bytes):
            answered = entry[1].get(qtype, entry[2])
            if answered is not NODATA:
                return answered  # type: ignore[return-value]
        return _NODATA_HEADS, self._negative_tail(len(qname))

    def __repr__(self) -> str:
        return f"<Table {self.zone.origin} serial {self.zone.serial}, {len(self.entries)} names>"

    def _nonexistent(self, qname: bytes) -> bool:
        """Whether qname, which is no name of the zone, does not exist: no wildcard,
        delegation or SOA name in the way."""
        entries = self.entries
        soa_names = self.soa_names
        name = qname
        while True:
            if name in soa_names:
                return False
            name = name[name[0] + 1 :]
            value = entries.get(name)
            if value is not None:
                break
        # name is the closest encloser (RFC 4592): the rest depends on it alone.
        plain = self._enclosers.get(name)
        if plain is None:
            plain = self._enclosers[name] = not (
                value == _UNANSWERABLE_ENTRY
                or b"\x01*" + name in entries
                or (soa_names and _at_or_below_any(name, soa_names))
            )
        return plain

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


def _at_or_below_any(key: bytes, names: Collection[bytes]) -> bool:
    """Whether the name of wire form key is one of names or below one."""
    offset = 0
    while key[offset]:
        if key[offset:] in names:
            return True
        offset += key[offset] + 1
    return False


def answer_from_tables(
    tables: Mapping[bytes, Table | None], wire: bytes, tcp: bool
) -> tuple[bytes, bytes] | None:
    """The response to the plain query wire (see gitdns.plain) from its zone's table,
    with the origin of that zone (wire_key); or None.

    tables: every zone served, by wire_key of its origin, with its table or None. The
    server calls this for every request the response cache misses, before the general
    path: it reads the request itself, and the walk to the zone checks the question's
    labels on the way (the table holds valid names only).
    """
    if len(wire) < 17 or wire[2] & 0xF8:
        return None
    counts = wire[4:12]
    # kind: the EDNS bit of the Heads index; opt_size: that of the OPT record to add.
    if counts == COUNTS:
        end = len(wire)
        limit = 512
        kind = opt_size = 0
    elif counts == COUNTS_EDNS:
        end = len(wire) - OPT_SIZE
        opt = wire[end:]
        # Version 0 (higher is BADVERS), no options (RDLENGTH 0).
        if (
            end >= 17
            and opt[:3] == OPT_START
            and opt[5:7] == b"\x00\x00"
            and opt[9:] == b"\x00\x00"
        ):
            payload: int | None = opt[3] << 8 | opt[4]
        else:
            # Options (a cookie): the question is taken to end at the name's first zero
            # byte. If that byte is inside a label instead, the walk to the zone steps
            # over it and finds no zone.
            end = wire.find(b"\x00", 12) + 5
            payload = plain_opt(wire, end) if end >= 17 else None
            if payload is None:
                return None
        limit = max(512, min(payload, UDP_PAYLOAD))
        kind, opt_size = 4, OPT_SIZE
    else:
        return None
    if wire[end - 2 : end] != _CLASS_IN:
        return None
    qname = wire[12 : end - 4].lower()
    offset = 0
    # The closest enclosing zone, as gitdns.names.closest finds it.
    while (table := tables.get(qname[offset:], _NO_ZONE)) is _NO_ZONE:
        length = qname[offset]
        # The root, or no label: a compression pointer, an obsolete label type.
        if not length or length > 63:
            return None
        offset += length + 1
        if offset >= len(qname):
            return None
    if table is None:
        return None
    qtype = wire[end - 4 : end - 2]
    entry = table.entries.get(qname)
    if entry is not None and entry[:2] == qtype:
        heads, tail = table.heads[entry[2]], entry[3:]
    else:
        answered = table.other(qname, qtype, entry)
        if answered is None:
            return None
        heads, tail = answered
    if end + len(tail) + opt_size > (TCP_LIMIT if tcp else limit):
        return None
    head = heads[kind | wire[2] & 0x01 | (wire[3] & 0x10) >> 3]
    if kind:
        return b"".join((wire[:2], head, wire[12:end], tail, OPT_RECORD)), table.key
    return b"".join((wire[:2], head, wire[12:], tail)), table.key


def build_table(
    zone: Zone, zoneset: ZoneSet, checkpoint: Callable[[], bool] = bool
) -> Table | None:
    """zone's table, for the zones of zoneset (zone among them). checkpoint() is called
    every CHUNK names (the caller's chance to let others run); the build stops, giving
    None, when it returns true."""
    builder = _Builder(zone, zoneset)
    entries: dict[bytes, Entry] = {}
    nodes = zone.nodes
    for count, (name, node) in enumerate(nodes.items()):
        if not count % CHUNK and checkpoint():
            return None
        key = wire_key(name)
        entries[key] = builder.entry(name, key, node)
    if len(zone.names) > len(nodes):
        for name in zone.names:
            if name not in nodes:
                key = wire_key(name)
                entries[key] = builder.entry(name, key, None)
    return Table(zone, entries, builder.heads, frozenset(builder.external), builder.soa_names)


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
        self._shared_heads: dict[bytes, Heads] = {}
        # The Heads bytes entries index, and their indexes.
        self.heads: list[Heads] = []
        self._indexes: dict[Heads, int] = {}

    def entry(
        self, name: dns.name.Name, key: bytes, node: dict[int, dns.rrset.RRset] | None
    ) -> Entry:
        """The entry of name (key), whose node is node (None: an empty non-terminal)."""
        return self._entry(self._records(name, key, node))

    def _records(
        self, name: dns.name.Name, key: bytes, node: dict[int, dns.rrset.RRset] | None
    ) -> list[Record]:
        """name's answers: (type, answer bytes) pairs, type 0 for every type not listed,
        empty answer bytes to leave to resolve()."""
        if self.zone.cuts and self._at_or_below_cut(name):
            return [UNANSWERABLE]
        records = []
        if node is not None and CNAME in node:
            types = self._chain_types(name)
            if types is None:
                return [UNANSWERABLE]
            for rdtype in sorted(types | {CNAME}):
                records.append(self._resolved(rdtype, key, name, rdtype))
            records.append(self._resolved(0, key, name, _UNHELD))
        else:
            for rdtype, rrset in (node or {}).items():
                if len(rrset) > 1:
                    records.append((rdtype.to_bytes(2, "big"), _UNANSWERED))
                elif rdtype in _NAMELESS:
                    records.append(_nameless_record(rdtype, rrset))
                elif rdtype in _WITH_ADDITIONAL and not self._targets_outside(rrset):
                    records.append(self._resolved(rdtype, key, name, rdtype))
                else:
                    records.append(_typed(rdtype, _rrset_alone(key, rrset)))
            if key.endswith(self._soa_names) and _at_or_below_any(key, self.soa_names):
                records.append(UNANSWERABLE)
        return records

    def _entry(self, records: list[Record]) -> Entry:
        """The Entry of records (see the module docstring); equal heads are shared."""
        answers: dict[bytes, Answered | None] = {}
        every: Answered | object | None = NODATA
        for rdtype, answer in records:
            answered = (self._heads(answer[:10]), answer[10:]) if answer else None
            if rdtype == _EVERY_TYPE:
                every = answered
            else:
                answers[rdtype] = answered
        if every is NODATA and len(answers) == 1:
            ((rdtype, answered),) = answers.items()
            if answered is not None:
                index = self._indexes.get(answered[0])
                if index is not None:
                    return rdtype + _INDEX[index] + answered[1]
        return None, answers, every

    def _heads(self, head: bytes) -> Heads:
        """The Heads of an answer whose head is flags, ANCOUNT, NSCOUNT and ARCOUNT
        without and with an OPT record."""
        heads = self._shared_heads.get(head)
        if heads is None:
            heads = self._shared_heads[head] = make_heads(head)
            if len(self.heads) < _HEADS_INDEXED:
                self._indexes[heads] = len(self.heads)
                self.heads.append(heads)
        return heads

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


def _typed(rdtype: int, answer: bytes) -> Record:
    return rdtype.to_bytes(2, "big"), answer


def make_heads(head: bytes) -> Heads:
    """From an answer's flags, ANCOUNT, NSCOUNT and ARCOUNT without and with an OPT
    record: the response's flags and counts for each kind of request, by RD | CD >> 3 |
    EDNS << 2 (RD and CD are copied from the request, as dns.renderer's users do)."""
    flags = int.from_bytes(head[:2], "big")
    return tuple(
        (flags | (_RD if kind & 1 else 0) | (_CD if kind & 2 else 0)).to_bytes(2, "big")
        + _QDCOUNT
        + head[2:6]
        + (head[8:10] if kind & 4 else head[6:8])
        for kind in range(8)
    )


_INDEX = [bytes((index,)) for index in range(_HEADS_INDEXED)]
_NODATA_HEADS = make_heads(_NODATA)
_NXDOMAIN_HEADS = make_heads(_NXDOMAIN)


def _rrset_alone(key: bytes, rrset: dns.rrset.RRset) -> bytes:
    """The answer bytes whose answer section is rrset alone, owned by the name of key
    (as _Builder._render makes them, without an Answer to go through)."""
    out = bytearray(12) + key + _QUESTION
    if write_rrset(out, question_compression(key), rrset) is None:
        return _UNANSWERED
    return _ONE_ANSWER + out[12 + len(key) + 4 :]


def _nameless_record(rdtype: int, rrset: dns.rrset.RRset) -> Record:
    """The record of a one-record RRset of a type whose data holds no names, as
    _Builder._render makes it of resolve()'s answer, the bulk of a big zone made
    directly: its owner is the question's name, a pointer to it."""
    data = bytearray()
    RDATA_WRITERS[rdtype](data, {}, next(iter(rrset)))  # type: ignore[misc]
    return rdtype.to_bytes(2, "big"), b"".join(
        (
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
