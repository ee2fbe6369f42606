"""RFC 2136 prerequisites and updates, as tables of UPDATE messages read from the wire."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update
from twisted.trial.unittest import SynchronousTestCase

from gitdns.test.zonedata import EXAMPLE
from gitdns.update import (
    PendingZone,
    Record,
    UpdateResult,
    apply_update,
    next_serial,
    serial_newer,
)
from gitdns.zones import Zone, parse_zone

ORIGIN = dns.name.from_text("example.")
IN = dns.rdataclass.IN
NONE = dns.rdataclass.NONE
ANY = dns.rdataclass.ANY
T = dns.rdatatype

NOERROR = dns.rcode.NOERROR
FORMERR = dns.rcode.FORMERR
NOTAUTH = dns.rcode.NOTAUTH
NOTZONE = dns.rcode.NOTZONE
NXDOMAIN = dns.rcode.NXDOMAIN
NXRRSET = dns.rcode.NXRRSET
YXDOMAIN = dns.rcode.YXDOMAIN
YXRRSET = dns.rcode.YXRRSET
REFUSED = dns.rcode.REFUSED

SOA_TEXT = "ns1 hostmaster {} 7200 3600 1209600 300"
EXAMPLE_SERIAL = 2024010101

Build = Callable[[dns.update.UpdateMessage], None]


def n(relative: str) -> dns.name.Name:
    """A name of the example zone ("@" is the apex; a trailing dot makes it absolute)."""
    return dns.name.from_text(relative, ORIGIN)


def rd(rdtype: str, text: str, rdclass: str = "IN") -> dns.rdata.Rdata:
    return dns.rdata.from_text(rdclass, rdtype, text, ORIGIN, relativize=False)


def record(text: str) -> Record:
    """ "owner ttl TYPE rdata" with owner relative to the example zone."""
    owner, ttl, rdtype, data = text.split(None, 3)
    return (n(owner), int(ttl), rd(rdtype, data))


def soa_record(serial: int) -> Record:
    return record(f"@ 3600 SOA {SOA_TEXT.format(serial)}")


def raw(
    update: dns.update.UpdateMessage,
    section: int,
    name: str,
    rdtype: int,
    *,
    rdclass: int = IN,
    deleting: int | None = None,
    ttl: int = 0,
    rdata: dns.rdata.Rdata | None = None,
) -> None:
    """Put one RR in a section as it goes on the wire, for forms the helpers cannot make.

    A deleting class (ANY or NONE) is what goes on the wire as the RR's class.
    """
    rrset = update.find_rrset(
        update.sections[section], n(name), rdclass, rdtype, T.NONE, deleting, True, True
    )
    if rdata is not None:
        rrset.add(rdata, ttl)


PREREQ, UPDATE = 1, 2


def received(build: Build, zone: str | dns.name.Name = ORIGIN, **kw: object) -> dns.message.Message:
    """The UPDATE message as the server reads it from the network."""
    update = dns.update.UpdateMessage(zone, **kw)
    build(update)
    message = dns.message.from_wire(update.to_wire())
    assert isinstance(message, dns.update.UpdateMessage)
    return message


def example_zone(serial: int = EXAMPLE_SERIAL) -> Zone:
    text = EXAMPLE.replace(str(EXAMPLE_SERIAL), str(serial))
    return parse_zone(ORIGIN, text, "example")


def records_of(zone: Zone) -> set[Record]:
    return {(rrset.name, rrset.ttl, rdata) for rrset in zone.rrsets() for rdata in rrset}


ADD_NEW = "new 300 A 192.0.2.200"


def add_new(update: dns.update.UpdateMessage) -> None:
    update.add(n("new"), 300, "A", "192.0.2.200")


def steps(*builds: Build) -> Build:
    def build(update: dns.update.UpdateMessage) -> None:
        for each in builds:
            each(update)

    return build


@dataclass(frozen=True)
class Case:
    label: str
    build: Build
    rcode: int = NOERROR
    # Expected net changes, "owner ttl TYPE rdata" relative to example., in order. The
    # serial increment (old SOA removed, new SOA added, at the end) is implied whenever
    # something changed and `added` holds no SOA of its own.
    removed: Sequence[str] = ()
    added: Sequence[str] = ()
    serial: int = EXAMPLE_SERIAL


class TableTestCase(SynchronousTestCase):
    """Runs a table of cases against the example zone and checks every result."""

    def run_case(self, case: Case) -> UpdateResult:
        zone = example_zone(case.serial)
        before = records_of(zone)
        names, cuts = zone.names, zone.cuts
        result = apply_update(zone, received(case.build))
        self.assertEqual(result.rcode, case.rcode, case.label)
        removed = [record(text) for text in case.removed]
        added = [record(text) for text in case.added]
        if (
            case.rcode == NOERROR
            and (removed or added)
            and not any(rdata.rdtype == T.SOA for _, _, rdata in added)
        ):
            removed.append(soa_record(case.serial))
            added.append(soa_record(next_serial(case.serial)))
        self.assertEqual(result.removed, removed, case.label)
        self.assertEqual(result.added, added, case.label)
        self.assertEqual(result.changed, bool(removed or added), case.label)
        # The old zone is untouched: it may still be served, or the update re-applied.
        self.assertEqual(records_of(zone), before, case.label)
        self.assertIs(zone.names, names, case.label)
        self.assertIs(zone.cuts, cuts, case.label)
        if not result.changed:
            self.assertIs(result.zone, zone, case.label)
            return result
        check_zone(self, result.zone, case.label)
        expected = (before - set(removed)) | set(added)
        self.assertEqual(records_of(result.zone), expected, case.label)
        return result

    def run_table(self, cases: Sequence[Case]) -> None:
        labels = [case.label for case in cases]
        assert len(set(labels)) == len(labels), "case labels must be unique"
        for case in cases:
            self.run_case(case)


def check_zone(test: SynchronousTestCase, zone: Zone, label: str = "") -> None:
    """The zone an update made is the zone its records would make from scratch."""
    fresh = Zone(zone.origin, list(zone.rrsets()))
    test.assertEqual(set(zone.nodes), set(fresh.nodes), label)
    test.assertEqual(zone.names, fresh.names, label)
    test.assertEqual(zone.cuts, fresh.cuts, label)
    test.assertEqual(zone.serial, fresh.serial, label)
    test.assertEqual(zone.soa, fresh.soa, label)
    test.assertEqual(zone.negative_soa.ttl, fresh.negative_soa.ttl, label)
    test.assertEqual(zone.negative_soa, fresh.negative_soa, label)
    for name, node in zone.nodes.items():
        test.assertTrue(node, f"{label}: {name} owns nothing but is a node")
        for rdtype, rrset in node.items():
            test.assertEqual(rrset.rdtype, rdtype, label)
            test.assertTrue(rrset.name.is_subdomain(zone.origin), label)


PREREQUISITES = [
    # 3.2.1 name is in use (class ANY, type ANY)
    Case("name in use", steps(lambda u: u.present(n("mail")), add_new), added=[ADD_NEW]),
    Case("name in use: no such name", steps(lambda u: u.present(n("nothing")), add_new), NXDOMAIN),
    Case(
        "name in use: an empty non-terminal is not in use",
        steps(lambda u: u.present(n("b.c")), add_new),
        NXDOMAIN,
    ),
    Case(
        "name in use: a wildcard does not make names exist",
        lambda u: u.present(n("x.wild")),
        NXDOMAIN,
    ),
    # 3.2.1 RRset exists, value independent (class ANY, type T)
    Case("rrset exists", steps(lambda u: u.present(n("mail"), "A"), add_new), added=[ADD_NEW]),
    Case("rrset exists: other type", lambda u: u.present(n("mail"), "MX"), NXRRSET),
    Case("rrset exists: no such name", lambda u: u.present(n("nothing"), "A"), NXRRSET),
    # 3.2.2 RRset exists, value dependent (class IN)
    Case(
        "rrset equals",
        steps(lambda u: u.present(n("@"), "NS", "ns1", "ns2.other."), add_new),
        added=[ADD_NEW],
    ),
    Case(
        "rrset equals: order does not matter",
        steps(lambda u: u.present(n("@"), "NS", "ns2.other.", "ns1"), add_new),
        added=[ADD_NEW],
    ),
    Case(
        "rrset equals: parts of one RRset add up",
        steps(
            lambda u: u.present(n("@"), "NS", "ns1"),
            lambda u: u.present(n("mail"), "A", "192.0.2.25"),
            lambda u: u.present(n("@"), "NS", "ns2.other."),
            add_new,
        ),
        added=[ADD_NEW],
    ),
    Case("rrset equals: a subset is not", lambda u: u.present(n("@"), "NS", "ns1"), NXRRSET),
    Case(
        "rrset equals: a superset is not",
        lambda u: u.present(n("@"), "NS", "ns1", "ns2.other.", "ns3"),
        NXRRSET,
    ),
    Case("rrset equals: other data", lambda u: u.present(n("mail"), "A", "192.0.2.26"), NXRRSET),
    Case("rrset equals: no such rrset", lambda u: u.present(n("mail"), "MX", "10 mail"), NXRRSET),
    Case(
        "rrset equals: TTL must be zero",
        lambda u: raw(u, PREREQ, "mail", T.A, ttl=3600, rdata=rd("A", "192.0.2.25")),
        FORMERR,
    ),
    # 3.2.3 name is not in use (class NONE, type ANY)
    Case("name not in use", steps(lambda u: u.absent(n("new")), add_new), added=[ADD_NEW]),
    Case("name not in use: it is", lambda u: u.absent(n("mail")), YXDOMAIN),
    Case(
        "name not in use: an empty non-terminal",
        steps(lambda u: u.absent(n("b.c")), add_new),
        added=[ADD_NEW],
    ),
    Case("name not in use: the apex", lambda u: u.absent(n("@")), YXDOMAIN),
    # 3.2.4 RRset does not exist (class NONE, type T)
    Case("rrset absent", steps(lambda u: u.absent(n("mail"), "MX"), add_new), added=[ADD_NEW]),
    Case("rrset absent: it exists", lambda u: u.absent(n("mail"), "A"), YXRRSET),
    Case("rrset absent: at a CNAME", lambda u: u.absent(n("www"), "CNAME"), YXRRSET),
    # 3.2.5 order and form
    Case(
        "prerequisites: the first failure decides",
        lambda u: (u.present(n("nothing")), u.absent(n("mail"), "A")),
        NXDOMAIN,
    ),
    Case(
        "prerequisites: value-dependent ones are compared last",
        lambda u: (u.present(n("mail"), "A", "192.0.2.99"), u.absent(n("mail"))),
        YXDOMAIN,
    ),
    Case("prerequisite outside the zone", lambda u: u.present(n("www.example.org.")), NOTZONE),
    Case("prerequisite above the zone", lambda u: u.absent(n(".")), NOTZONE),
    Case(
        "prerequisite of another class",
        lambda u: raw(
            u, PREREQ, "mail", T.TXT, rdclass=dns.rdataclass.CH, rdata=rd("TXT", "x", "CH")
        ),
        FORMERR,
    ),
    Case(
        "prerequisite of a meta type",
        lambda u: raw(u, PREREQ, "mail", T.AXFR, deleting=ANY),
        FORMERR,
    ),
    Case(
        "prerequisite of type ANY and class IN",
        lambda u: raw(u, PREREQ, "mail", T.ANY, rdata=dns.rdata.GenericRdata(IN, T.ANY, b"")),
        FORMERR,
    ),
    Case(
        "a failed prerequisite stops even a malformed update",
        lambda u: (u.present(n("nothing")), u.add(n("x.example.org."), 300, "A", "192.0.2.1")),
        NXDOMAIN,
    ),
    Case(
        "prerequisites are checked before any update",
        lambda u: (u.absent(n("new")), add_new(u), u.present(n("new"))),
        NXDOMAIN,
    ),
]

ADDS = [
    Case("add at a new name", add_new, added=[ADD_NEW]),
    Case(
        "add to an RRset",
        lambda u: u.add(n("mail"), 3600, "A", "192.0.2.26"),
        added=["mail 3600 A 192.0.2.26"],
    ),
    Case("add a duplicate", lambda u: u.add(n("mail"), 3600, "A", "192.0.2.25")),
    Case(
        "add a duplicate with a new TTL",
        lambda u: u.add(n("mail"), 60, "A", "192.0.2.25"),
        removed=["mail 3600 A 192.0.2.25"],
        added=["mail 60 A 192.0.2.25"],
    ),
    Case(
        "add with a new TTL sets the RRset's TTL",
        lambda u: u.add(n("@"), 600, "NS", "ns3"),
        removed=["@ 3600 NS ns1", "@ 3600 NS ns2.other."],
        added=["@ 600 NS ns1", "@ 600 NS ns2.other.", "@ 600 NS ns3"],
    ),
    Case(
        "add twice in one update",
        lambda u: (add_new(u), add_new(u)),
        added=[ADD_NEW],
    ),
    Case(
        "add a new type beside others",
        lambda u: u.add(n("mail"), 300, "TXT", '"hi"'),
        added=['mail 300 TXT "hi"'],
    ),
    Case(
        "add at an empty non-terminal",
        lambda u: u.add(n("b.c"), 300, "TXT", '"x"'),
        added=['b.c 300 TXT "x"'],
    ),
    Case(
        "add below a leaf",
        lambda u: u.add(n("x.y.mail"), 300, "A", "192.0.2.9"),
        added=["x.y.mail 300 A 192.0.2.9"],
    ),
    Case(
        "add glue below a delegation",
        lambda u: u.add(n("ns2.sub"), 300, "A", "192.0.2.55"),
        added=["ns2.sub 300 A 192.0.2.55"],
    ),
    Case(
        "add a delegation",
        lambda u: u.add(n("kid"), 300, "NS", "ns.kid"),
        added=["kid 300 NS ns.kid"],
    ),
    Case(
        "add a WKS replaces the one for its address and protocol",
        lambda u: (
            u.add(n("mail"), 300, "WKS", "192.0.2.25 6 25"),
            u.add(n("mail"), 300, "WKS", "192.0.2.25 17 53"),
            u.add(n("mail"), 300, "WKS", "192.0.2.25 6 25 80"),
        ),
        added=["mail 300 WKS 192.0.2.25 17 53", "mail 300 WKS 192.0.2.25 6 25 80"],
    ),
    # CNAME exclusivity (3.4.2.2, RFC 2181 10.1)
    Case("add a CNAME beside other data", lambda u: u.add(n("mail"), 300, "CNAME", "www")),
    Case("add a CNAME at the apex", lambda u: u.add(n("@"), 300, "CNAME", "www")),
    Case("add other data beside a CNAME", lambda u: u.add(n("www"), 300, "A", "192.0.2.1")),
    Case(
        "add a CNAME at a CNAME replaces it",
        lambda u: u.add(n("www"), 300, "CNAME", "chain2"),
        removed=["www 3600 CNAME chain1"],
        added=["www 300 CNAME chain2"],
    ),
    Case("add the same CNAME again", lambda u: u.add(n("www"), 3600, "CNAME", "chain1")),
    Case(
        "add a CNAME at a new name",
        lambda u: u.add(n("alias"), 300, "CNAME", "www"),
        added=["alias 300 CNAME www"],
    ),
    Case(
        "add NSEC beside a CNAME",
        lambda u: u.add(n("www"), 300, "NSEC", "www2 CNAME NSEC RRSIG"),
        added=["www 300 NSEC www2 CNAME NSEC RRSIG"],
    ),
    Case(
        "add a CNAME after deleting the other data",
        lambda u: (u.delete(n("mail")), u.add(n("mail"), 300, "CNAME", "www")),
        removed=["mail 3600 A 192.0.2.25"],
        added=["mail 300 CNAME www"],
    ),
    Case(
        "add a DNAME at a DNAME replaces it",
        lambda u: (
            u.add(n("old"), 300, "DNAME", "a.example.net."),
            u.add(n("old"), 300, "DNAME", "b.example.net."),
        ),
        added=["old 300 DNAME b.example.net."],
    ),
    # SOA (3.4.2.2): at the apex, with a newer serial only, replacing the old one.
    Case(
        "add an SOA with a newer serial",
        lambda u: u.add(n("@"), 3600, "SOA", SOA_TEXT.format(EXAMPLE_SERIAL + 5)),
        removed=[f"@ 3600 SOA {SOA_TEXT.format(EXAMPLE_SERIAL)}"],
        added=[f"@ 3600 SOA {SOA_TEXT.format(EXAMPLE_SERIAL + 5)}"],
    ),
    Case(
        "add an SOA with a newer serial keeps it through other changes",
        lambda u: (
            add_new(u),
            u.add(n("@"), 600, "SOA", "ns1 admin 2024020202 1 2 3 4"),
        ),
        removed=[f"@ 3600 SOA {SOA_TEXT.format(EXAMPLE_SERIAL)}"],
        added=[ADD_NEW, "@ 600 SOA ns1 admin 2024020202 1 2 3 4"],
    ),
    Case(
        "add an SOA with the same serial",
        lambda u: u.add(n("@"), 3600, "SOA", "ns1 admin 2024010101 1 2 3 4"),
    ),
    Case(
        "add an SOA with an older serial",
        lambda u: u.add(n("@"), 3600, "SOA", "ns1 admin 2024010100 1 2 3 4"),
    ),
    Case(
        "add an SOA older by RFC 1982 though numerically larger",
        lambda u: u.add(n("@"), 3600, "SOA", SOA_TEXT.format(EXAMPLE_SERIAL + 2**31 + 1)),
    ),
    Case(
        "add an SOA newer by RFC 1982 across the wrap",
        lambda u: u.add(n("@"), 3600, "SOA", SOA_TEXT.format(5)),
        removed=[f"@ 3600 SOA {SOA_TEXT.format(4294967000)}"],
        added=[f"@ 3600 SOA {SOA_TEXT.format(5)}"],
        serial=4294967000,
    ),
    Case(
        "add an SOA away from the apex",
        lambda u: u.add(n("mail"), 3600, "SOA", SOA_TEXT.format(EXAMPLE_SERIAL + 5)),
    ),
    Case(
        "add an older SOA, and other data: the serial is incremented",
        lambda u: (u.add(n("@"), 3600, "SOA", "ns1 admin 1 1 2 3 4"), add_new(u)),
        added=[ADD_NEW],
    ),
    Case(
        "two newer SOAs: the last one stays",
        lambda u: (
            u.add(n("@"), 3600, "SOA", SOA_TEXT.format(EXAMPLE_SERIAL + 1)),
            u.add(n("@"), 3600, "SOA", SOA_TEXT.format(EXAMPLE_SERIAL + 2)),
        ),
        removed=[f"@ 3600 SOA {SOA_TEXT.format(EXAMPLE_SERIAL)}"],
        added=[f"@ 3600 SOA {SOA_TEXT.format(EXAMPLE_SERIAL + 2)}"],
    ),
]

DELETES = [
    # 3.4.2.3 delete an RRset (class ANY, type T)
    Case(
        "delete an RRset",
        lambda u: u.delete(n("ns1"), "AAAA"),
        removed=["ns1 3600 AAAA 2001:db8::53"],
    ),
    Case(
        "delete the last RRset of a name",
        lambda u: u.delete(n("mail"), "A"),
        removed=["mail 3600 A 192.0.2.25"],
    ),
    Case("delete a missing RRset", lambda u: u.delete(n("mail"), "MX")),
    Case("delete an RRset of a missing name", lambda u: u.delete(n("nothing"), "A")),
    Case("delete the apex SOA RRset", lambda u: u.delete(n("@"), "SOA")),
    Case("delete the apex NS RRset", lambda u: u.delete(n("@"), "NS")),
    Case(
        "delete another apex RRset",
        lambda u: u.delete(n("@"), "MX"),
        removed=["@ 3600 MX 10 mail"],
    ),
    Case(
        "delete a delegation's NS RRset",
        lambda u: u.delete(n("sub"), "NS"),
        removed=["sub 3600 NS ns.sub", "sub 3600 NS ns.elsewhere."],
    ),
    Case(
        "delete a leaf below empty non-terminals",
        lambda u: u.delete(n("a.b.c"), "A"),
        removed=["a.b.c 3600 A 192.0.2.3"],
    ),
    Case(
        "delete a name whose wildcard sibling keeps the parent",
        lambda u: u.delete(n("host.wild"), "A"),
        removed=["host.wild 3600 A 192.0.2.100"],
    ),
    # 3.4.2.3 delete all RRsets of a name (class ANY, type ANY)
    Case(
        "delete a name",
        lambda u: u.delete(n("ns1")),
        removed=["ns1 3600 A 192.0.2.53", "ns1 3600 AAAA 2001:db8::53"],
    ),
    Case("delete a missing name", lambda u: u.delete(n("nothing"))),
    Case("delete an empty non-terminal", lambda u: u.delete(n("b.c"))),
    Case(
        "delete the apex keeps SOA and NS",
        lambda u: u.delete(n("@")),
        removed=["@ 3600 MX 10 mail", "@ 3600 A 192.0.2.1"],
    ),
    Case(
        "delete a delegation point",
        lambda u: u.delete(n("sub")),
        removed=[
            "sub 3600 NS ns.sub",
            "sub 3600 NS ns.elsewhere.",
            "sub 3600 DS 12345 13 2 " + "0123456789abcdef" * 4,
        ],
    ),
    # 3.4.2.4 delete an RR (class NONE)
    Case(
        "delete a record",
        lambda u: u.delete(n("@"), "NS", "ns2.other."),
        removed=["@ 3600 NS ns2.other."],
    ),
    Case(
        "delete the last record of a name",
        lambda u: u.delete(n("mail"), "A", "192.0.2.25"),
        removed=["mail 3600 A 192.0.2.25"],
    ),
    Case("delete a missing record", lambda u: u.delete(n("mail"), "A", "192.0.2.99")),
    Case("delete a record of a missing name", lambda u: u.delete(n("nothing"), "A", "192.0.2.1")),
    Case(
        "delete the SOA record", lambda u: u.delete(n("@"), "SOA", SOA_TEXT.format(EXAMPLE_SERIAL))
    ),
    Case(
        "delete every apex NS record: the last one stays",
        lambda u: u.delete(n("@"), "NS", "ns1", "ns2.other."),
        removed=["@ 3600 NS ns1"],
    ),
    Case(
        "delete the last NS record of a delegation",
        lambda u: u.delete(n("sub"), "NS", "ns.sub", "ns.elsewhere."),
        removed=["sub 3600 NS ns.sub", "sub 3600 NS ns.elsewhere."],
    ),
]

SEQUENCES = [
    Case(
        "replace: delete the RRset, then add",
        lambda u: u.replace(n("mail"), 300, "A", "192.0.2.26"),
        removed=["mail 3600 A 192.0.2.25"],
        added=["mail 300 A 192.0.2.26"],
    ),
    Case(
        "updates apply in order",
        lambda u: (
            u.add(n("x"), 300, "A", "192.0.2.1"),
            u.delete(n("x"), "A"),
            u.add(n("x"), 300, "A", "192.0.2.2"),
        ),
        added=["x 300 A 192.0.2.2"],
    ),
    Case(
        "add, then delete the record",
        lambda u: (add_new(u), u.delete(n("new"), "A", "192.0.2.200")),
    ),
    Case(
        "delete, then add the same record back",
        lambda u: (u.delete(n("mail")), u.add(n("mail"), 3600, "A", "192.0.2.25")),
    ),
    Case(
        "changes are listed in the order they took effect",
        lambda u: (
            u.add(n("b"), 300, "A", "192.0.2.2"),
            u.delete(n("ns1"), "A"),
            u.add(n("a"), 300, "A", "192.0.2.1"),
            u.delete(n("mail")),
            u.add(n("b"), 300, "A", "192.0.2.3"),
        ),
        removed=["ns1 3600 A 192.0.2.53", "mail 3600 A 192.0.2.25"],
        added=["b 300 A 192.0.2.2", "a 300 A 192.0.2.1", "b 300 A 192.0.2.3"],
    ),
    Case(
        "an empty update",
        lambda u: None,
    ),
]

FORMS = [
    Case(
        "add outside the zone",
        lambda u: u.add(n("www.example.org."), 300, "A", "192.0.2.1"),
        NOTZONE,
    ),
    Case("delete the parent of the zone", lambda u: u.delete(n(".")), NOTZONE),
    Case(
        "a bad update stops the good ones before it",
        lambda u: (add_new(u), u.delete(n("mail.example.net."), "A")),
        NOTZONE,
    ),
    Case(
        "the first bad update decides",
        lambda u: (
            raw(
                u,
                UPDATE,
                "x",
                T.TXT,
                rdclass=dns.rdataclass.CH,
                ttl=300,
                rdata=rd("TXT", "x", "CH"),
            ),
            u.add(n("x.example.org."), 300, "A", "192.0.2.1"),
        ),
        FORMERR,
    ),
    Case(
        "add of another class",
        lambda u: raw(
            u, UPDATE, "x", T.TXT, rdclass=dns.rdataclass.CH, ttl=300, rdata=rd("TXT", "x", "CH")
        ),
        FORMERR,
    ),
    Case(
        "add of type ANY",
        lambda u: raw(u, UPDATE, "x", T.ANY, ttl=300, rdata=dns.rdata.GenericRdata(IN, T.ANY, b"")),
        FORMERR,
    ),
    Case(
        "add of type AXFR",
        lambda u: raw(
            u, UPDATE, "x", T.AXFR, ttl=300, rdata=dns.rdata.GenericRdata(IN, T.AXFR, b"")
        ),
        FORMERR,
    ),
    Case(
        "add of type MAILB",
        lambda u: raw(
            u, UPDATE, "x", T.MAILB, ttl=300, rdata=dns.rdata.GenericRdata(IN, T.MAILB, b"")
        ),
        FORMERR,
    ),
    Case(
        "delete an RRset of type AXFR", lambda u: raw(u, UPDATE, "x", T.AXFR, deleting=ANY), FORMERR
    ),
    Case(
        "delete an RRset of type MAILA",
        lambda u: raw(u, UPDATE, "x", T.MAILA, deleting=ANY),
        FORMERR,
    ),
    Case(
        "delete a record with a TTL",
        lambda u: raw(u, UPDATE, "mail", T.A, deleting=NONE, ttl=300, rdata=rd("A", "192.0.2.25")),
        FORMERR,
    ),
    Case(
        "delete a record of type ANY",
        lambda u: raw(
            u, UPDATE, "mail", T.ANY, deleting=NONE, rdata=dns.rdata.GenericRdata(IN, T.ANY, b"")
        ),
        FORMERR,
    ),
    Case(
        "add a signature",
        lambda u: u.add(
            n("mail"),
            300,
            "RRSIG",
            "A 13 2 3600 20300101000000 20200101000000 12345 example. AAAA",
        ),
        REFUSED,
    ),
]


class PrerequisiteTests(TableTestCase):
    def test_prerequisites(self) -> None:
        self.run_table(PREREQUISITES)


class UpdateTests(TableTestCase):
    def test_adds(self) -> None:
        self.run_table(ADDS)

    def test_deletes(self) -> None:
        self.run_table(DELETES)

    def test_sequences(self) -> None:
        self.run_table(SEQUENCES)

    def test_forms(self) -> None:
        self.run_table(FORMS)

    def test_owner_keeps_the_zone_spelling(self) -> None:
        result = apply_update(
            example_zone(), received(lambda u: u.add(n("MIXEDCASE"), 3600, "A", "192.0.2.8"))
        )
        (owner, _, _), _ = result.added
        self.assertEqual(owner.to_text(), "MixedCase.example.")

    def test_names_follow_added_and_deleted_nodes(self) -> None:
        zone = example_zone()
        for build in [
            lambda u: u.delete(n("a.b.c")),
            lambda u: u.add(n("x.b.c"), 300, "A", "192.0.2.1"),
            lambda u: u.add(n("y.x.b.c"), 300, "A", "192.0.2.2"),
            lambda u: u.delete(n("x.b.c")),
            lambda u: u.delete(n("y.x.b.c")),
            lambda u: (u.delete(n("host.wild")), u.delete(n("*.wild"))),
            lambda u: u.add(n("deep.down.below"), 300, "A", "192.0.2.3"),
            lambda u: (u.delete(n("deep.down.below")), u.add(n("down.below"), 300, "TXT", "x")),
            lambda u: (
                u.add(n("a.b.c"), 300, "A", "192.0.2.3"),
                u.add(n("x.a.b.c"), 300, "A", "192.0.2.4"),
                u.add(n("z.b.c"), 300, "A", "192.0.2.5"),
            ),
            # Child first: the walk up from it already took the parent away.
            lambda u: (u.delete(n("x.a.b.c")), u.delete(n("a.b.c"))),
        ]:
            result = apply_update(zone, received(build))
            self.assertTrue(result.changed)
            check_zone(self, result.zone)
            zone = result.zone
        for gone in ["a.b.c", "x.a.b.c", "x.b.c", "wild", "deep.down.below"]:
            self.assertNotIn(n(gone), zone.names)
        for present in ["below", "down.below", "c", "b.c", "z.b.c"]:
            self.assertIn(n(present), zone.names)

    def test_pending_batch_is_the_same_as_one_by_one(self) -> None:
        # Every case of the tables, applied in turn to one zone: first each UPDATE's zone
        # indexed at once, then all of them pending and indexed at the end.
        messages = [received(case.build) for case in PREREQUISITES + ADDS + DELETES + SEQUENCES]
        one_by_one = example_zone()
        pending: Zone | PendingZone = example_zone()
        for message in messages:
            expected = apply_update(one_by_one, message)
            result = apply_update(pending, message, pending=True)
            self.assertEqual(
                (result.rcode, result.removed, result.added),
                (expected.rcode, expected.removed, expected.added),
            )
            one_by_one, pending = expected.zone, result.zone
        self.assertIsInstance(pending, PendingZone)
        assert isinstance(pending, PendingZone)
        batched = pending.finish()
        check_zone(self, batched)
        self.assertEqual(records_of(batched), records_of(one_by_one))
        self.assertEqual(batched.names, one_by_one.names)
        self.assertEqual(batched.cuts, one_by_one.cuts)

    def test_updates_share_untouched_data(self) -> None:
        zone = example_zone()
        result = apply_update(zone, received(add_new))
        self.assertIs(result.zone.nodes[n("mail")], zone.nodes[n("mail")])
        self.assertIs(result.zone.cuts, zone.cuts)


class ZoneSectionTests(SynchronousTestCase):
    def test_other_zone_is_notauth(self) -> None:
        zone = example_zone()
        result = apply_update(zone, received(add_new, "example.org."))
        self.assertEqual(result.rcode, NOTAUTH)
        self.assertIs(result.zone, zone)

    def test_zone_below_is_notauth(self) -> None:
        message = received(lambda u: None, "nested.example.")
        self.assertEqual(apply_update(example_zone(), message).rcode, NOTAUTH)

    def test_other_class_is_formerr(self) -> None:
        message = received(lambda u: None, ORIGIN, rdclass=dns.rdataclass.CH)
        self.assertEqual(apply_update(example_zone(), message).rcode, FORMERR)

    def test_not_one_soa_is_formerr(self) -> None:
        # dnspython refuses these on the wire already; the check stands anyway.
        for zone_section in [
            [],
            [dns.rrset.RRset(ORIGIN, IN, T.SOA), dns.rrset.RRset(ORIGIN, IN, T.SOA)],
            [dns.rrset.RRset(ORIGIN, IN, T.NS)],
        ]:
            message = dns.update.UpdateMessage(ORIGIN)
            message.zone = zone_section
            self.assertEqual(apply_update(example_zone(), message).rcode, FORMERR)


class SerialTests(SynchronousTestCase):
    def test_incremented(self) -> None:
        result = apply_update(example_zone(), received(add_new))
        self.assertEqual(result.zone.serial, EXAMPLE_SERIAL + 1)
        self.assertEqual(result.zone.soa[0].serial, EXAMPLE_SERIAL + 1)
        self.assertEqual(result.zone.negative_soa[0].serial, EXAMPLE_SERIAL + 1)

    def test_wraps_around(self) -> None:
        result = apply_update(example_zone(4294967295), received(add_new))
        self.assertEqual(result.zone.serial, 0)
        self.assertEqual(result.added[-1], soa_record(0))

    def test_kept_when_raised(self) -> None:
        result = apply_update(
            example_zone(),
            received(
                lambda u: (u.add(n("@"), 3600, "SOA", SOA_TEXT.format(2030010100)), add_new(u))
            ),
        )
        self.assertEqual(result.zone.serial, 2030010100)

    def test_unchanged_by_a_no_op(self) -> None:
        zone = example_zone()
        result = apply_update(zone, received(lambda u: u.delete(n("nothing"))))
        self.assertIs(result.zone, zone)
        self.assertEqual(result.zone.serial, EXAMPLE_SERIAL)
        self.assertFalse(result.changed)

    def test_rfc1982(self) -> None:
        self.assertTrue(serial_newer(1, 0))
        self.assertTrue(serial_newer(0, 4294967295))
        self.assertTrue(serial_newer(2**31 - 1, 0))
        self.assertFalse(serial_newer(2**31, 0))  # undefined: not newer
        self.assertFalse(serial_newer(0, 2**31))
        self.assertFalse(serial_newer(5, 5))
        self.assertFalse(serial_newer(4294967295, 0))
        self.assertEqual(next_serial(4294967295), 0)
