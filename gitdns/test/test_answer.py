"""The answer engine, rule by rule, from a table of cases."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype
from twisted.trial.unittest import SynchronousTestCase

from gitdns.answer import resolve
from gitdns.test.zonedata import zoneset

SOA = "example. 300 IN SOA ns1.example. hostmaster.example. 2024010101 7200 3600 1209600 300"
NS1_A = "ns1.example. 3600 IN A 192.0.2.53"
NS1_AAAA = "ns1.example. 3600 IN AAAA 2001:db8::53"

NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED

# (rule, qname, qtype, rcode, aa, answer, authority, additional)
CASES = [
    ("authoritative data", "ns1.example.", "A", NOERROR, True, {NS1_A}, set(), set()),
    (
        "NODATA has the SOA, TTL min(SOA TTL, MINIMUM)",
        "ns1.example.",
        "TXT",
        NOERROR,
        True,
        set(),
        {SOA},
        set(),
    ),
    ("NXDOMAIN has the SOA", "nope.example.", "A", NXDOMAIN, True, set(), {SOA}, set()),
    ("empty non-terminal is NODATA", "b.c.example.", "A", NOERROR, True, set(), {SOA}, set()),
    ("ENT at the top of a branch", "c.example.", "A", NOERROR, True, set(), {SOA}, set()),
    (
        "NS answer has addresses of in-zone targets",
        "example.",
        "NS",
        NOERROR,
        True,
        {"example. 3600 IN NS ns1.example.", "example. 3600 IN NS ns2.other."},
        set(),
        {NS1_A, NS1_AAAA},
    ),
    (
        "MX answer has the exchange's address",
        "example.",
        "MX",
        NOERROR,
        True,
        {"example. 3600 IN MX 10 mail.example."},
        set(),
        {"mail.example. 3600 IN A 192.0.2.25"},
    ),
    (
        "SRV answer has the target's address",
        "_sip._udp.example.",
        "SRV",
        NOERROR,
        True,
        {"_sip._udp.example. 3600 IN SRV 0 5 5060 sip.example."},
        set(),
        {"sip.example. 3600 IN A 192.0.2.60"},
    ),
    (
        "CNAME chain followed",
        "www.example.",
        "A",
        NOERROR,
        True,
        {
            "www.example. 3600 IN CNAME chain1.example.",
            "chain1.example. 3600 IN CNAME chain2.example.",
            "chain2.example. 3600 IN A 192.0.2.80",
        },
        set(),
        set(),
    ),
    (
        "CNAME asked for is not followed",
        "www.example.",
        "CNAME",
        NOERROR,
        True,
        {"www.example. 3600 IN CNAME chain1.example."},
        set(),
        set(),
    ),
    (
        "CNAME chain ending in NODATA",
        "www.example.",
        "TXT",
        NOERROR,
        True,
        {
            "www.example. 3600 IN CNAME chain1.example.",
            "chain1.example. 3600 IN CNAME chain2.example.",
        },
        {SOA},
        set(),
    ),
    (
        "dangling CNAME: NXDOMAIN for the last name (RFC 6604)",
        "dangling.example.",
        "A",
        NXDOMAIN,
        True,
        {"dangling.example. 3600 IN CNAME nowhere.example."},
        {SOA},
        set(),
    ),
    (
        "CNAME into another of our zones",
        "away.example.",
        "A",
        NOERROR,
        True,
        {
            "away.example. 3600 IN CNAME www.nested.example.",
            "www.nested.example. 600 IN A 192.0.2.200",
        },
        set(),
        set(),
    ),
    (
        "CNAME out of our zones stops",
        "outside.example.",
        "A",
        NOERROR,
        True,
        {"outside.example. 3600 IN CNAME www.example.net."},
        set(),
        set(),
    ),
    (
        "CNAME loop stops",
        "loop1.example.",
        "A",
        NOERROR,
        True,
        {
            "loop1.example. 3600 IN CNAME loop2.example.",
            "loop2.example. 3600 IN CNAME loop1.example.",
        },
        set(),
        set(),
    ),
    (
        "wildcard synthesises with the query name",
        "x.wild.example.",
        "A",
        NOERROR,
        True,
        {"x.wild.example. 3600 IN A 192.0.2.99"},
        set(),
        set(),
    ),
    (
        "wildcard matches several labels deep",
        "y.x.wild.example.",
        "TXT",
        NOERROR,
        True,
        {'y.x.wild.example. 3600 IN TXT "wild"'},
        set(),
        set(),
    ),
    ("wildcard NODATA", "x.wild.example.", "MX", NOERROR, True, set(), {SOA}, set()),
    (
        "existing name blocks the wildcard",
        "host.wild.example.",
        "TXT",
        NOERROR,
        True,
        set(),
        {SOA},
        set(),
    ),
    (
        "below an existing name: no wildcard (closest encloser is host)",
        "z.host.wild.example.",
        "A",
        NXDOMAIN,
        True,
        set(),
        {SOA},
        set(),
    ),
    (
        "the wildcard's parent is an ENT-free name",
        "wild.example.",
        "A",
        NOERROR,
        True,
        set(),
        {SOA},
        set(),
    ),
    (
        "wildcard CNAME is followed",
        "q.cname.example.",
        "A",
        NOERROR,
        True,
        {"q.cname.example. 3600 IN CNAME chain2.example.", "chain2.example. 3600 IN A 192.0.2.80"},
        set(),
        set(),
    ),
    (
        "referral at the cut",
        "sub.example.",
        "A",
        NOERROR,
        False,
        set(),
        {"sub.example. 3600 IN NS ns.sub.example.", "sub.example. 3600 IN NS ns.elsewhere."},
        {"ns.sub.example. 3600 IN A 192.0.2.54"},
    ),
    (
        "referral below the cut",
        "deep.sub.example.",
        "MX",
        NOERROR,
        False,
        set(),
        {"sub.example. 3600 IN NS ns.sub.example.", "sub.example. 3600 IN NS ns.elsewhere."},
        {"ns.sub.example. 3600 IN A 192.0.2.54"},
    ),
    (
        "glue is not authoritative data",
        "ns.sub.example.",
        "A",
        NOERROR,
        False,
        set(),
        {"sub.example. 3600 IN NS ns.sub.example.", "sub.example. 3600 IN NS ns.elsewhere."},
        {"ns.sub.example. 3600 IN A 192.0.2.54"},
    ),
    (
        "DS at the cut is the parent's",
        "sub.example.",
        "DS",
        NOERROR,
        True,
        {
            "sub.example. 3600 IN DS 12345 13 2 "
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        },
        set(),
        set(),
    ),
    (
        "ANY returns every RRset",
        "ns1.example.",
        "ANY",
        NOERROR,
        True,
        {NS1_A, NS1_AAAA},
        set(),
        set(),
    ),
    (
        "the deepest zone wins when zones nest",
        "www.nested.example.",
        "A",
        NOERROR,
        True,
        {"www.nested.example. 600 IN A 192.0.2.200"},
        set(),
        set(),
    ),
    (
        "names outside every zone are refused",
        "www.example.net.",
        "A",
        REFUSED,
        False,
        set(),
        set(),
        set(),
    ),
    (
        "owner names match case-insensitively",
        "MIXEDCASE.EXAMPLE.",
        "A",
        NOERROR,
        True,
        {"MixedCase.example. 3600 IN A 192.0.2.7"},
        set(),
        set(),
    ),
]


def texts(rrsets: list) -> set[str]:
    return {line for rrset in rrsets for line in rrset.to_text().splitlines()}


class ResolveTests(SynchronousTestCase):
    def test_cases(self) -> None:
        zones = zoneset()
        for rule, qname, qtype, rcode, aa, answer, authority, additional in CASES:
            with self.subTest(rule=rule):
                result = resolve(zones, dns.name.from_text(qname), dns.rdatatype.from_text(qtype))
                self.assertEqual(
                    (result.rcode, result.authoritative), (rcode, aa), f"{rule}: rcode, AA"
                )
                self.assertEqual(texts(result.answer), answer, f"{rule}: answer")
                self.assertEqual(texts(result.authority), authority, f"{rule}: authority")
                self.assertEqual(texts(result.additional), additional, f"{rule}: additional")

    def test_referral_glue_is_required(self) -> None:
        result = resolve(zoneset(), dns.name.from_text("x.sub.example."), dns.rdatatype.A)
        self.assertEqual(result.required_additional, 1)

    def test_answer_names_its_zones(self) -> None:
        result = resolve(zoneset(), dns.name.from_text("away.example."), dns.rdatatype.A)
        self.assertEqual(
            result.origins,
            {dns.name.from_text("example."), dns.name.from_text("nested.example.")},
        )
