"""Authoritative answering (RFC 1034 4.3.2, RFC 2308, RFC 4592, RFC 6604): names to RRsets.

Pure: a ZoneSet and a question in, the sections of the answer out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from gitdns.names import closest, name_from_labels, parent
from gitdns.zones import Zone, ZoneSet

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
ANY = dns.rdatatype.ANY
CNAME = dns.rdatatype.CNAME
DS = dns.rdatatype.DS
MX = dns.rdatatype.MX
NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
SRV = dns.rdatatype.SRV

# Longest CNAME chain followed inside our zones (BIND restarts at most 11 times).
MAX_CHAIN = 12


@dataclass
class Answer:
    rcode: int = dns.rcode.NOERROR
    authoritative: bool = False
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    # Additional records that must fit or the response is truncated (referral glue).
    required_additional: int = 0
    # Origins of the zones the answer was drawn from: it changes when one of them does.
    origins: set[dns.name.Name] = field(default_factory=set)


def resolve(zoneset: ZoneSet, qname: dns.name.Name, qtype: int) -> Answer:
    """Answer qname/qtype (class IN) from our zones; REFUSED when no zone encloses it."""
    result = Answer()
    zones = zoneset.zones
    zone = closest(zones, qname)
    if zone is None:
        result.rcode = dns.rcode.REFUSED
        return result
    name = qname
    seen = {qname}
    for step in range(MAX_CHAIN):
        result.origins.add(zone.origin)
        referral, target = _lookup(zone, name, qtype, result)
        if step == 0:
            result.authoritative = not referral
        if target is None or target in seen:
            break
        seen.add(target)
        zone = closest(zones, target)
        if zone is None:
            break
        name = target
    _add_additional(zoneset, result)
    return result


def _lookup(
    zone: Zone, qname: dns.name.Name, qtype: int, result: Answer
) -> tuple[bool, dns.name.Name | None]:
    """One step of RFC 1034 4.3.2 inside zone: (was a referral, CNAME target to follow)."""
    cut = _zone_cut(zone, qname, qtype)
    if cut is not None:
        result.authority.append(zone.nodes[cut][NS])
        return True, None
    owner = qname
    node = zone.nodes.get(qname)
    if node is None:
        if qname in zone.names:
            # An empty non-terminal exists: NODATA, and it blocks wildcards (RFC 4592 2.2.2).
            _no_data(zone, result)
            return False, None
        node = _wildcard(zone, qname)
        if node is None:
            result.rcode = dns.rcode.NXDOMAIN
            result.authority.append(zone.negative_soa)
            return False, None
    if qtype == ANY:
        result.answer.extend(_owned(rrset, owner) for rrset in node.values())
        return False, None
    rrset = node.get(qtype)
    if rrset is not None:
        result.answer.append(_owned(rrset, owner))
        return False, None
    cname = node.get(CNAME)
    if cname is not None:
        result.answer.append(_owned(cname, owner))
        return False, cname[0].target
    _no_data(zone, result)
    return False, None


def _no_data(zone: Zone, result: Answer) -> None:
    result.rcode = dns.rcode.NOERROR
    result.authority.append(zone.negative_soa)


def _zone_cut(zone: Zone, qname: dns.name.Name, qtype: int) -> dns.name.Name | None:
    """The delegation point nearest the apex on the way down to qname, if any.

    DS at the delegation point itself is the parent's data (RFC 4035 3.1.4.1).
    """
    if not zone.cuts:
        return None
    found = None
    name = qname
    origin = zone.origin
    while name != origin:
        if name in zone.cuts and not (name == qname and qtype == DS):
            found = name
        name = parent(name)
    return found


def _wildcard(zone: Zone, qname: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
    """The node of the source of synthesis: '*' below the closest encloser (RFC 4592 3.3.1)."""
    encloser = parent(qname)
    while encloser not in zone.names:
        encloser = parent(encloser)
    return zone.nodes.get(name_from_labels((b"*", *encloser.labels)))


def _owned(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """rrset as owned by owner: wildcard answers carry the query name (RFC 4592 2.1.1)."""
    if rrset.name == owner:
        return rrset
    return dns.rrset.from_rdata_list(owner, rrset.ttl, list(rrset))


def additional_targets(rrset: dns.rrset.RRset) -> list[dns.name.Name]:
    """The names whose addresses go in the additional section with rrset."""
    if rrset.rdtype == NS:
        return [rdata.target for rdata in rrset]
    if rrset.rdtype == MX:
        return [rdata.exchange for rdata in rrset]
    if rrset.rdtype == SRV:
        return [rdata.target for rdata in rrset]
    return []


def _add_additional(zoneset: ZoneSet, result: Answer) -> None:
    """Addresses of NS, MX and SRV targets we hold (RFC 1034 3.6, RFC 2782)."""
    present = {(rrset.name, rrset.rdtype) for rrset in result.answer}
    referral = not result.authoritative and bool(result.authority)
    for section in (result.answer, result.authority):
        for rrset in section:
            glue = rrset.rdtype == NS
            for target in additional_targets(rrset):
                zone = closest(zoneset.zones, target)
                if zone is None:
                    continue
                node = zone.nodes.get(target)
                if node is None or (not glue and _zone_cut(zone, target, A) is not None):
                    continue
                for rdtype in (A, AAAA):
                    found = node.get(rdtype)
                    if found is not None and (target, rdtype) not in present:
                        present.add((target, rdtype))
                        result.additional.append(found)
                        if referral and section is result.authority:
                            result.required_additional += 1
