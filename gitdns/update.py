"""RFC 2136 dynamic update: a zone and an UPDATE message in, the next zone and its changes out.

Pure: no I/O, no clock. The caller has parsed the message (``dns.message.from_wire`` gives
a ``dns.update.UpdateMessage`` for opcode UPDATE, one RR per RRset so their order and TTLs
survive), checked its TSIG and the key's right to change the zone.

How dnspython hands us the sections: a record of class ANY or NONE arrives with
``rrset.deleting`` set to that class and ``rrset.rdclass`` set to the zone's class;
class ANY records (and class NONE prerequisites) carry no rdata, so their RRset is empty
and their TTL is lost (it cannot be checked here).

Where RFC 2136 leaves room we do as BIND does: any singleton type (CNAME, DNAME, NSEC...)
replaces its RRset, CNAME exclusivity ignores DNSSEC's neutral types (NSEC, KEY...), the
SOA serial is compared in RFC 1982 arithmetic. The changes reported are net: a record
added and deleted again by the same update is no change, and neither is the update.

The new zone shares every node the update did not touch with the old one: the cost of
an update is a copy of the zone's node dictionary (and of its name set when names come
or go), not a rebuild.
"""

from __future__ import annotations

from collections import ChainMap, Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from gitdns.zones import Zone

# A record as the zone file and IXFR see it: owner, TTL, data.
Record = tuple[dns.name.Name, int, dns.rdata.Rdata]
Node = Mapping[int, dns.rrset.RRset]

ANY = dns.rdatatype.ANY
NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
WKS = dns.rdatatype.WKS
IN = dns.rdataclass.IN
CLASS_ANY = dns.rdataclass.ANY
CLASS_NONE = dns.rdataclass.NONE
NOERROR = dns.rcode.NOERROR
FORMERR = dns.rcode.FORMERR
NOTAUTH = dns.rcode.NOTAUTH
NOTZONE = dns.rcode.NOTZONE
REFUSED = dns.rcode.REFUSED

CNAME_KIND = dns.node.NodeKind.CNAME
REGULAR_KIND = dns.node.NodeKind.REGULAR
NEUTRAL_KIND = dns.node.NodeKind.NEUTRAL

# Signatures are kept per covered type, but a Zone holds one RRset per type at a name:
# we serve unsigned zones and refuse to add signatures rather than mangle them.
SIGNATURES = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.SIG})

SERIAL_MODULUS = 2**32
SERIAL_HALF = 2**31

EMPTY_NODE: Node = {}


@dataclass(frozen=True)
class UpdateResult:
    rcode: int
    # The next zone; the very same object when the update changed nothing.
    zone: Zone | PendingZone
    # Net changes, each list in the order its records took effect. A TTL change shows as
    # the records removed with the old TTL and added with the new one.
    removed: list[Record] = field(default_factory=list)
    added: list[Record] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.added)


class PendingZone:
    """A zone with UPDATEs applied but not indexed yet: the zone they started from and
    the nodes they touched. A batch of UPDATEs goes through one, and is indexed once
    (finish) instead of copying a big zone's tables for every UPDATE."""

    __slots__ = ("base", "nodes", "origin", "serial", "touched")

    def __init__(self, base: Zone, touched: dict[dns.name.Name, dict[int, dns.rrset.RRset]]):
        self.base = base
        self.touched = touched
        # An empty touched node hides the base's: the name owns nothing any more.
        self.nodes: Mapping[dns.name.Name, Node] = ChainMap(touched, base.nodes)
        self.origin = base.origin
        self.serial: int = self.nodes[base.origin][SOA][0].serial

    def finish(self) -> Zone:
        return successor(self.base, self.touched)


def apply_update(
    zone: Zone | PendingZone, update: dns.message.Message, *, pending: bool = False
) -> UpdateResult:
    """Check the prerequisites and apply the updates of an UPDATE (RFC 2136 3.1-3.4).

    pending: the resulting zone is left a PendingZone, for more UPDATEs to follow.
    """
    # sections[0..2] are zone, prerequisite and update (UpdateMessage names them so).
    zone_section, prerequisites, updates = update.sections[:3]
    rcode = (
        _check_zone_section(zone, zone_section)
        or _check_prerequisites(zone, prerequisites)
        or _prescan(zone.origin, updates)
    )
    if rcode != NOERROR:
        return UpdateResult(rcode, zone)
    draft = _Draft(zone)
    for rrset in updates:
        draft.apply(rrset)
    return draft.result(pending)


def serial_newer(serial: int, than: int) -> bool:
    """RFC 1982 3.2: serial is greater than `than` (undefined comparisons are not)."""
    difference = (serial - than) % SERIAL_MODULUS
    return 0 < difference < SERIAL_HALF


def next_serial(serial: int) -> int:
    """RFC 1982 3.1: serial plus one."""
    return (serial + 1) % SERIAL_MODULUS


def with_serial(soa: dns.rdtypes.ANY.SOA.SOA, serial: int) -> dns.rdtypes.ANY.SOA.SOA:
    """The SOA rdata with another serial (dnspython's replace() inspects signatures: slow)."""
    return dns.rdtypes.ANY.SOA.SOA(
        soa.rdclass,
        soa.rdtype,
        soa.mname,
        soa.rname,
        serial,
        soa.refresh,
        soa.retry,
        soa.expire,
        soa.minimum,
    )


# -- checks (RFC 2136 3.1, 3.2, 3.4.1) --------------------------------------------------


def _check_zone_section(zone: Zone | PendingZone, section: list[dns.rrset.RRset]) -> int:
    """3.1.1: one SOA question of class IN naming this zone."""
    if len(section) != 1:
        return FORMERR
    (question,) = section
    if question.rdtype != SOA or question.rdclass != IN or question.deleting is not None:
        return FORMERR
    if question.name != zone.origin:
        return NOTAUTH
    return NOERROR


def _check_prerequisites(zone: Zone | PendingZone, prerequisites: list[dns.rrset.RRset]) -> int:
    """3.2.5: the first failing prerequisite decides, value-dependent ones last."""
    # (name, type) -> the exact RRset the value-dependent prerequisites ask for (3.2.3).
    expected: dict[tuple[dns.name.Name, int], set[dns.rdata.Rdata]] = {}
    for rrset in prerequisites:
        name, rdtype, rdclass = rrset.name, rrset.rdtype, rrset.deleting
        if rrset.ttl != 0:
            return FORMERR
        if not name.is_subdomain(zone.origin):
            return NOTZONE
        node = zone.nodes.get(name, EMPTY_NODE)
        if rdclass is not None and len(rrset):
            return FORMERR
        if rdclass == CLASS_ANY:
            if rdtype == ANY:
                if not node:
                    return dns.rcode.NXDOMAIN
            elif dns.rdatatype.is_metatype(rdtype):
                return FORMERR
            elif rdtype not in node:
                return dns.rcode.NXRRSET
        elif rdclass == CLASS_NONE:
            if rdtype == ANY:
                if node:
                    return dns.rcode.YXDOMAIN
            elif dns.rdatatype.is_metatype(rdtype):
                return FORMERR
            elif rdtype in node:
                return dns.rcode.YXRRSET
        elif rrset.rdclass == IN and len(rrset) and not dns.rdatatype.is_metatype(rdtype):
            expected.setdefault((name, rdtype), set()).update(rrset)
        else:
            return FORMERR
    for (name, rdtype), rdatas in expected.items():
        present = zone.nodes.get(name, EMPTY_NODE).get(rdtype)
        if present is None or set(present) != rdatas:
            return dns.rcode.NXRRSET
    return NOERROR


def _prescan(origin: dns.name.Name, updates: list[dns.rrset.RRset]) -> int:
    """3.4.1.3: every update is in the zone and well formed before any is applied."""
    for rrset in updates:
        rdtype, rdclass = rrset.rdtype, rrset.deleting
        if not rrset.name.is_subdomain(origin):
            return NOTZONE
        if rdclass is None:
            if rrset.rdclass != IN or not len(rrset) or dns.rdatatype.is_metatype(rdtype):
                return FORMERR
            if rdtype in SIGNATURES:
                return REFUSED
        elif rdclass == CLASS_ANY:
            if len(rrset) or (dns.rdatatype.is_metatype(rdtype) and rdtype != ANY):
                return FORMERR
        elif rdclass == CLASS_NONE:
            if rrset.ttl != 0 or not len(rrset) or dns.rdatatype.is_metatype(rdtype):
                return FORMERR
        else:
            return FORMERR
    return NOERROR


# -- applying (RFC 2136 3.4.2) ----------------------------------------------------------


class _Draft:
    """The zone being changed: touched nodes are copies, all else is the old zone's."""

    def __init__(self, zone: Zone | PendingZone) -> None:
        self.zone = zone
        self.origin = zone.origin
        # name -> its node as it is now (empty: the name owns nothing any more)
        self.touched: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        # Every record that left or entered, in order, including ones that came back.
        self.removal_log: list[Record] = []
        self.addition_log: list[Record] = []

    def node(self, name: dns.name.Name) -> Node:
        node = self.touched.get(name)
        return self.zone.nodes.get(name, EMPTY_NODE) if node is None else node

    def put(self, name: dns.name.Name, rdtype: int, rrset: dns.rrset.RRset | None) -> None:
        """Make rrset the name's RRset of rdtype (None: remove it) and log the records."""
        node = self.touched.get(name)
        if node is None:
            node = self.touched[name] = dict(self.zone.nodes.get(name, EMPTY_NODE))
        before = node.get(rdtype)
        if rrset is None:
            node.pop(rdtype, None)
        else:
            node[rdtype] = rrset
        gone, came = _record_difference(before, rrset)
        self.removal_log.extend(gone)
        self.addition_log.extend(came)

    def apply(self, rrset: dns.rrset.RRset) -> None:
        name, rdtype = rrset.name, rrset.rdtype
        if rrset.deleting is None:
            for rdata in rrset:
                self.add(name, rrset.ttl, rdata)
        elif rrset.deleting == CLASS_NONE:
            for rdata in rrset:
                self.delete_record(name, rdata)
        elif rdtype == ANY:
            self.delete_name(name)
        else:
            self.delete_rrset(name, rdtype)

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        """3.4.2.2, with RFC 2181 5.2: the record's TTL becomes the whole RRset's."""
        rdtype = rdata.rdtype
        node = self.node(name)
        kind = dns.node.NodeKind.classify(rdtype, rdata.covers())
        if kind is not NEUTRAL_KIND:
            # A CNAME never joins other data, nor other data a CNAME (RFC 2181 10.1).
            clash = REGULAR_KIND if kind is CNAME_KIND else CNAME_KIND
            if any(dns.node.NodeKind.classify_rdataset(r) is clash for r in node.values()):
                return
        current = node.get(rdtype)
        if rdtype == SOA:
            # Only the apex has one, and only a newer serial replaces it.
            if current is None or not serial_newer(rdata.serial, current[0].serial):
                return
            rdatas = [rdata]
        elif dns.rdatatype.is_singleton(rdtype) or current is None:
            # CNAME, DNAME...: the new record replaces the old (as BIND does).
            rdatas = [rdata]
        elif rdtype == WKS:
            # 3.4.2.2: a WKS record replaces the one for the same address and protocol.
            service = (rdata.address, rdata.protocol)
            rdatas = [r for r in current if (r.address, r.protocol) != service]
            rdatas.append(rdata)
        elif rdata in current:
            rdatas = list(current)
        else:
            rdatas = [*current, rdata]
        if current is not None and current.ttl == ttl and set(current) == set(rdatas):
            return
        owner = current.name if current is not None else _owner(node, name)
        self.put(name, rdtype, dns.rrset.from_rdata_list(owner, ttl, rdatas))

    def delete_rrset(self, name: dns.name.Name, rdtype: int) -> None:
        """3.4.2.3: the apex keeps its SOA and NS RRsets."""
        if name == self.origin and rdtype in (SOA, NS):
            return
        if rdtype in self.node(name):
            self.put(name, rdtype, None)

    def delete_name(self, name: dns.name.Name) -> None:
        """3.4.2.3: every RRset of the name, but the apex keeps its SOA and NS."""
        apex = name == self.origin
        for rdtype in list(self.node(name)):
            if not (apex and rdtype in (SOA, NS)):
                self.put(name, rdtype, None)

    def delete_record(self, name: dns.name.Name, rdata: dns.rdata.Rdata) -> None:
        """3.4.2.4: never the SOA, never the last NS of the apex."""
        rdtype = rdata.rdtype
        current = self.node(name).get(rdtype)
        if rdtype == SOA or current is None or rdata not in current:
            return
        if len(current) == 1:
            if rdtype == NS and name == self.origin:
                return
            self.put(name, rdtype, None)
            return
        rest = [r for r in current if r != rdata]
        self.put(name, rdtype, dns.rrset.from_rdata_list(current.name, current.ttl, rest))

    def net_changes(self) -> tuple[list[Record], list[Record]]:
        """What differs between the old zone and the draft, in the order it happened."""
        gone: set[Record] = set()
        came: set[Record] = set()
        old_nodes = self.zone.nodes
        for name, node in self.touched.items():
            before = old_nodes.get(name, EMPTY_NODE)
            for rdtype in before.keys() | node.keys():
                removed, added = _record_difference(before.get(rdtype), node.get(rdtype))
                gone.update(removed)
                came.update(added)
        return _in_order(self.removal_log, gone), _in_order(self.addition_log, came)

    def result(self, pending: bool) -> UpdateResult:
        removed, added = self.net_changes()
        if not removed and not added:
            return UpdateResult(NOERROR, self.zone)
        old_serial = self.zone.serial
        soa = self.node(self.origin)[SOA]
        if not serial_newer(soa[0].serial, old_serial):
            # The update did not raise the serial itself: we do.
            bumped = with_serial(soa[0], next_serial(old_serial))
            self.put(self.origin, SOA, dns.rrset.from_rdata_list(soa.name, soa.ttl, [bumped]))
            removed, added = self.net_changes()
        zone = self.zone
        if isinstance(zone, PendingZone):
            following = PendingZone(zone.base, {**zone.touched, **self.touched})
        else:
            following = PendingZone(zone, self.touched)
        return UpdateResult(NOERROR, following if pending else following.finish(), removed, added)


def _owner(node: Node, name: dns.name.Name) -> dns.name.Name:
    """The owner name as the zone spells it (names compare without case)."""
    for rrset in node.values():
        return rrset.name
    return name


def _record_difference(
    before: dns.rrset.RRset | None, after: dns.rrset.RRset | None
) -> tuple[list[Record], list[Record]]:
    """Records of before not in after and of after not in before, TTL included."""
    if before is after:
        return [], []
    if before is None or after is None or before.ttl != after.ttl:
        return _records(before), _records(after)
    removed = [(before.name, before.ttl, rdata) for rdata in before if rdata not in after]
    added = [(after.name, after.ttl, rdata) for rdata in after if rdata not in before]
    return removed, added


def _records(rrset: dns.rrset.RRset | None) -> list[Record]:
    if rrset is None:
        return []
    return [(rrset.name, rrset.ttl, rdata) for rdata in rrset]


def _in_order(log: Iterable[Record], wanted: set[Record]) -> list[Record]:
    """The wanted records in the order of their first appearance in log."""
    ordered = []
    for record in log:
        if record in wanted:
            ordered.append(record)
            wanted.discard(record)
    return ordered


# -- the next Zone, sharing what did not change -------------------------------------------

# A name as a key that hashes fast (dnspython's Name hashes in Python, per character).
LabelKey = tuple[bytes, ...]


class UpdatedZone(Zone):
    """A Zone made by an update. It is a plain Zone to everyone else; it also carries how
    many children each name has, so that the next update removing a name knows at once
    whether an empty non-terminal stays."""

    __slots__ = ("child_counts",)

    child_counts: dict[LabelKey, int] | None


def _label_key(labels: Iterable[bytes]) -> LabelKey:
    return tuple(map(bytes.lower, labels))


def _child_counts(zone: Zone) -> dict[LabelKey, int]:
    """Name (as a LabelKey) -> how many of zone.names are its children."""
    known = zone.child_counts if isinstance(zone, UpdatedZone) else None
    if known is not None:
        return known
    counts = Counter(_label_key(name.labels[1:]) for name in zone.names)
    # The origin is in names too, but is nobody's child here.
    parent_of_origin = _label_key(zone.origin.labels[1:])
    counts[parent_of_origin] -= 1
    if not counts[parent_of_origin]:
        del counts[parent_of_origin]
    return dict(counts)


def successor(zone: Zone, touched: Mapping[dns.name.Name, dict[int, dns.rrset.RRset]]) -> Zone:
    """The zone with the touched nodes replaced (an empty node: the name is gone), built
    without looking at the others: an incremental change costs what it changes."""
    origin = zone.origin
    nodes = zone.nodes.copy()
    created: list[dns.name.Name] = []
    deleted: list[dns.name.Name] = []
    cuts_gained: set[dns.name.Name] = set()
    cuts_lost: set[dns.name.Name] = set()
    for name, node in touched.items():
        existed = name in zone.nodes
        if node:
            nodes[name] = node
            if not existed:
                created.append(name)
        elif existed:
            del nodes[name]
            deleted.append(name)
        if name != origin and (NS in node) != (name in zone.cuts):
            (cuts_gained if NS in node else cuts_lost).add(name)

    new = UpdatedZone.__new__(UpdatedZone)
    new.origin = origin
    new.nodes = nodes
    # As Zone.__init__ does.
    new.soa = soa = nodes[origin][SOA]
    new.serial = soa[0].serial
    new.negative_soa = dns.rrset.from_rdata_list(origin, min(soa.ttl, soa[0].minimum), list(soa))
    new.cuts = zone.cuts
    if cuts_gained or cuts_lost:
        new.cuts = (zone.cuts - cuts_lost) | cuts_gained
    new.names, new.child_counts = _next_names(zone, nodes, created, deleted)
    return new


def _next_names(
    zone: Zone,
    nodes: Mapping[dns.name.Name, Node],
    created: list[dns.name.Name],
    deleted: list[dns.name.Name],
) -> tuple[frozenset[dns.name.Name], dict[LabelKey, int] | None]:
    """zone.names after nodes were created and deleted: owners and empty non-terminals."""
    counts = zone.child_counts if isinstance(zone, UpdatedZone) else None
    if not created and not deleted:
        return zone.names, counts
    if deleted or counts is not None:
        # Copied: the old zone keeps its own.
        counts = dict(_child_counts(zone))
    gained: set[dns.name.Name] = set()
    lost: set[dns.name.Name] = set()
    for name in created:
        # The owner and the empty non-terminals above it that were not there yet.
        while name not in gained and name not in zone.names:
            gained.add(name)
            if counts is not None:
                parent = _label_key(name.labels[1:])
                counts[parent] = counts.get(parent, 0) + 1
            name = name.parent()
    if counts is not None:
        for name in deleted:
            # Gone with its last record unless something lives below; likewise upwards.
            while (
                name != zone.origin
                and name not in lost
                and name not in nodes
                and not counts.get(_label_key(name.labels))
            ):
                lost.add(name)
                parent = _label_key(name.labels[1:])
                counts[parent] -= 1
                if not counts[parent]:
                    del counts[parent]
                name = name.parent()
    names = zone.names
    if lost:
        names = names - lost
    if gained:
        names = names | gained
    return names, counts
