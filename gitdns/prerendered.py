"""Answers rendered ahead of the queries, for zones queried at names never asked before.

The response cache helps only with requests seen before: a big zone queried at random
names misses it most of the time, and even gitdns.plain's answer costs several times a
cache hit. So each zone's answers that are one RRset alone (its owner and type asked:
no CNAME to follow, no delegation on the way, no additional records) are rendered once,
the first time the zone is asked anything: such a query is then a dict lookup and a
join of bytes. The rest goes through resolve().

A table depends on its zone and on which zones are served (a target inside one of them
would bring additional records); it is kept for the next ZoneSet when both are the same.
Rendering a table costs about 10 µs a record, so a zone that changed (an UPDATE, a
reload) gets its new table only once it has stayed the same for QUIET seconds: a
stream of UPDATEs to a big zone must not make every query after one wait for a new
table. Meanwhile its answers are rendered on demand.
"""

from __future__ import annotations

from collections.abc import Mapping

import dns.name
import dns.rdatatype
import dns.rrset

from gitdns.answer import additional_targets
from gitdns.names import name_from_labels
from gitdns.plain import IN, OPT_RECORD, RDATA_WRITERS, RR_HEAD, PlainQuery, write_rrset
from gitdns.zones import Zone

_LENGTH = [bytes((length,)) for length in range(64)]
# A response's QR and AA, and the request's RD and CD.
_QR_AA = 0x8400
_RD_CD = 0x0110
_QUESTION_TAIL = b"\x00\x00\x00\x00"
_OWNER_POINTER = b"\xc0\x0c"
_WITHOUT_NAMES = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT})
QUIET = 10


def wire_name(name: dns.name.Name) -> bytes:
    """name in wire form, uncompressed, as cased."""
    return b"".join([_LENGTH[len(label)] + label for label in name.labels])


class Prerendered:
    """The prerendered answers of the zones served at one moment.

    Tables: owner in lower-case wire form + type (2 bytes) -> ANCOUNT (2 bytes) + the
    answer section as it follows the question.
    """

    def __init__(self, zones: Mapping[dns.name.Name, Zone], previous: Prerendered | None) -> None:
        self._zones = zones
        self._by_origin = {wire_name(origin).lower(): zone for origin, zone in zones.items()}
        # origin key -> (zone, table, {origin}), filled as zones are first asked.
        self._tables: dict[bytes, tuple[Zone, dict[bytes, bytes], frozenset[dns.name.Name]]] = {}
        # Zones that changed since they had a table: origin key -> (zone, first asked at).
        self._waiting: dict[bytes, tuple[Zone, int | None]] = {}
        if previous is None:
            return
        same_origins = previous._by_origin.keys() == self._by_origin.keys()
        for key, made in previous._tables.items():
            zone = self._by_origin.get(key)
            if same_origins and zone is made[0]:
                self._tables[key] = made
            elif zone is not None:
                self._waiting[key] = (zone, None)
        for key, (zone, since) in previous._waiting.items():
            current = self._by_origin.get(key)
            if current is not None:
                self._waiting[key] = (current, since if current is zone else None)

    def answer(
        self, wire: bytes, query: PlainQuery, now: int
    ) -> tuple[bytes, frozenset[dns.name.Name]] | None:
        """The response to the plain query wire, and its zone's origin, if prerendered;
        now is the time in seconds."""
        end = query.question_end
        qname = wire[12 : end - 4].lower()
        by_origin = self._by_origin
        offset = 0
        while True:
            origin_key = qname[offset:]
            zone = by_origin.get(origin_key)
            if zone is not None:
                break
            if not qname[offset]:
                return None
            offset += qname[offset] + 1
        made = self._tables.get(origin_key)
        if made is None:
            made = self._make(origin_key, zone, now)
            if made is None:
                return None
        entry = made[1].get(qname + wire[end - 4 : end - 2])
        if entry is None:
            return None
        flags = _QR_AA | (int.from_bytes(wire[2:4], "big") & _RD_CD)
        head = wire[:2] + flags.to_bytes(2, "big") + b"\x00\x01" + entry[:2]
        if query.payload is None:
            response = head + b"\x00\x00\x00\x00" + wire[12:end] + entry[2:]
        else:
            response = head + b"\x00\x00\x00\x01" + wire[12:end] + entry[2:] + OPT_RECORD
        return response, made[2]

    def _make(
        self, key: bytes, zone: Zone, now: int
    ) -> tuple[Zone, dict[bytes, bytes], frozenset[dns.name.Name]] | None:
        waiting = self._waiting.get(key)
        if waiting is not None:
            since = waiting[1]
            if since is None:
                self._waiting[key] = (zone, now)
                return None
            if now - since < QUIET:
                return None
            del self._waiting[key]
        made = self._tables[key] = (zone, prerender(zone, self._zones), frozenset((zone.origin,)))
        return made


# The tables made last, so that the next ZoneSet's keep what did not change.
_latest: list[Prerendered] = []


def prerendered(zones: Mapping[dns.name.Name, Zone]) -> Prerendered:
    """The tables for zones, taking over the latest ones' tables of unchanged zones."""
    made = Prerendered(zones, _latest[0] if _latest else None)
    _latest[:] = [made]
    return made


def prerender(zone: Zone, zones: Mapping[dns.name.Name, Zone]) -> dict[bytes, bytes]:
    """zone's table (see Prerendered): every RRset whose answer is that RRset alone."""
    table: dict[bytes, bytes] = {}
    cuts = zone.cuts
    depth = len(zone.origin.labels)
    origins = {wire_name(origin).lower() for origin in zones}
    for name, node in zone.nodes.items():
        if cuts and _at_or_below_cut(name, depth, cuts):
            continue
        owner = wire_name(name)
        key = owner.lower()
        for rdtype, rrset in node.items():
            if rrset.rdclass != IN:
                continue
            if rdtype in _WITHOUT_NAMES:
                body = _section_without_names(rrset)
            else:
                body = _section(owner, rrset, origins)
            if body is not None:
                table[key + rdtype.to_bytes(2, "big")] = body
    return table


def _at_or_below_cut(name: dns.name.Name, depth: int, cuts: frozenset[dns.name.Name]) -> bool:
    labels = name.labels
    return any(name_from_labels(labels[start:]) in cuts for start in range(len(labels) - depth))


def _section_without_names(rrset: dns.rrset.RRset) -> bytes:
    """ANCOUNT and the answer section of rrset, whose records hold no names: each
    owner is a pointer to the question's name."""
    write = RDATA_WRITERS[rrset.rdtype]
    head = _OWNER_POINTER + RR_HEAD.pack(rrset.rdtype, IN, rrset.ttl)
    parts = [len(rrset).to_bytes(2, "big")]
    for rdata in rrset:
        rdata_wire = bytearray()
        write(rdata_wire, {}, rdata)
        parts += (head, len(rdata_wire).to_bytes(2, "big"), rdata_wire)
    return b"".join(parts)


def _section(owner: bytes, rrset: dns.rrset.RRset, origins: set[bytes]) -> bytes | None:
    """ANCOUNT and the answer section after a question for rrset's owner and type, or
    None when resolve() would add records (a target inside one of our zones)."""
    for target in additional_targets(rrset):
        name = wire_name(target).lower()
        offset = 0
        while True:
            if name[offset:] in origins:
                return None
            if not name[offset]:
                break
            offset += name[offset] + 1
    out = bytearray(12) + owner + _QUESTION_TAIL
    # The question's name and its suffixes, as gitdns.plain.render_plain seeds them.
    compress = {}
    key = owner.lower()
    offset = 0
    while key[offset]:
        compress[key[offset:]] = 12 + offset
        offset += key[offset] + 1
    start = len(out)
    count = write_rrset(out, compress, rrset, shuffle=False)
    if count is None:
        return None
    return count.to_bytes(2, "big") + out[start:]
