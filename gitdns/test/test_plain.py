"""The plain-query path (gitdns.plain) gives the bytes of the general one, or steps aside."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gitdns.plain import parse_plain
from gitdns.respond import Served, answer_plain, respond, respond_general
from gitdns.test.zonedata import EXAMPLE, NESTED, ORG, zoneset

NOW = 1_700_000_000

# Records of many kinds and sizes, with names that compress against each other.
MORE = """\
$ORIGIN more.example.
$TTL 300
@        SOA  ns.more.example. admin.more.example. 5 3600 600 86400 30
@        NS   ns
@        NS   NS.More.Example.
@        MX   5 mail
@        MX   10 mail.more.example.
@        MX   20 mail.other.example.
ns       A    192.0.2.1
mail     A    192.0.2.2
mail     A    192.0.2.3
mail     AAAA 2001:db8::2
mail     AAAA ::ffff:192.0.2.2
txt      TXT  "one" "two" ""
txt      TXT  "three"
big      TXT  "{long}" "{long}"
ptr      PTR  mail.more.example.
srv      SRV  0 0 443 mail
caa      CAA  0 issue "letsencrypt.org"
sshfp    SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
dname    DNAME other.example.
hinfo    HINFO "cpu" "os"
deep.a.b.c A  192.0.2.9
*.star   MX   10 mail
*.star   TXT  "star"
*        CNAME ns
""".replace("{long}", "x" * 250)

FILES = {"example": EXAMPLE, "nested.example": NESTED, "example.org": ORG, "more.example": MORE}

OWNERS = [
    "example.",
    "ns1.example.",
    "mail.example.",
    "_sip._udp.example.",
    "www.example.",
    "chain2.example.",
    "dangling.example.",
    "away.example.",
    "outside.example.",
    "loop1.example.",
    "x.wild.example.",
    "host.wild.example.",
    "y.x.wild.example.",
    "z.cname.example.",
    "b.c.example.",
    "c.example.",
    "a.b.c.example.",
    "sub.example.",
    "ns.sub.example.",
    "deeper.ns.sub.example.",
    "mixedcase.example.",
    "nowhere.example.",
    "www.nested.example.",
    "nested.example.",
    "example.org.",
    "ns.example.org.",
    "nx.example.org.",
    "example.net.",
    ".",
    "more.example.",
    "ns.more.example.",
    "mail.more.example.",
    "txt.more.example.",
    "big.more.example.",
    "ptr.more.example.",
    "srv.more.example.",
    "caa.more.example.",
    "sshfp.more.example.",
    "dname.more.example.",
    "hinfo.more.example.",
    "deep.a.b.c.more.example.",
    "b.c.more.example.",
    "q.star.more.example.",
    "anything.more.example.",
    "two.labels.more.example.",
]

TYPES = [
    "A",
    "AAAA",
    "MX",
    "TXT",
    "NS",
    "SOA",
    "CNAME",
    "SRV",
    "DS",
    "PTR",
    "CAA",
    "SSHFP",
    "DNAME",
    "HINFO",
    "ANY",
    "NULL",
    "TYPE65000",
    "AXFR",
    "IXFR",
    "OPT",
    "TSIG",
]


def served() -> Served:
    return Served(zoneset(**FILES))


def fixed_order(items: list[object]) -> None:
    """random.shuffle's stand-in: the general path shuffles the records of an RRset."""


def case_variant(name: str, flips: int) -> str:
    return "".join(
        c.upper() if c.isalpha() and flips >> (i % 30) & 1 else c for i, c in enumerate(name)
    )


COOKIE = dns.edns.OptionType.COOKIE
# EDNS options a query may carry: resolvers send cookies (RFC 7873).
OPTIONS: list[list[dns.edns.Option]] = [
    [],
    [dns.edns.CookieOption(b"c" * 8, b"")],
    [dns.edns.CookieOption(b"c" * 8, b"s" * 8)],
    [dns.edns.CookieOption(b"c" * 8, b"s" * 32)],
    [dns.edns.GenericOption(COOKIE, b"short")],  # malformed: FORMERR
    [dns.edns.GenericOption(COOKIE, b"c" * 8 + b"s" * 7)],  # malformed too
    [dns.edns.NSIDOption(b"")],
    [dns.edns.CookieOption(b"c" * 8, b""), dns.edns.NSIDOption(b"")],
]


@st.composite
def queries(draw: st.DrawFn, owners: list[str] = OWNERS) -> tuple[bytes, bool]:
    """A query (and whether over TCP) for one of owners or a name below one, of any
    type, header flags, EDNS version, payload size and options."""
    name = case_variant(draw(st.sampled_from(owners)), draw(st.integers(0, 2**30 - 1)))
    if draw(st.booleans()):
        label = draw(st.text("abcXYZ019-_*", min_size=1, max_size=20))
        name = f"{label}.{name}" if name != "." else f"{label}."
    rdtype = draw(st.sampled_from(TYPES))
    edns = draw(st.sampled_from([None, 0, 0, 1]))
    payload = draw(st.sampled_from([0, 100, 512, 513, 1000, 1232, 1233, 4096, 65535]))
    options = draw(st.sampled_from(OPTIONS)) if edns is not None else []
    query = dns.message.make_query(
        name,
        rdtype,
        use_edns=edns if edns is not None else False,
        payload=payload,
        options=options,
    )
    query.id = draw(st.integers(0, 65535))
    query.flags = draw(st.integers(0, 0xFFFF)) & ~(dns.flags.QR | 0x7800)
    if edns is not None and draw(st.booleans()):
        query.ednsflags |= dns.flags.DO
    return query.to_wire(), draw(st.booleans())


class PlainPathTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.patch(random, "shuffle", fixed_order)
        self.served = served()

    def both(self, wire: bytes, tcp: bool = False) -> tuple[bytes | None, bytes]:
        plain = answer_plain(self.served, wire, tcp=tcp, now=NOW)
        general = respond_general(self.served, wire, tcp=tcp, now=NOW)
        assert general is not None
        if plain is not None:
            self.assertEqual(plain.origins, general.origins)
            self.assertEqual((plain.event, plain.transfer), (None, None))
        return (plain.wire if plain is not None else None), general.wire

    @settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(queries())
    def test_same_bytes_as_general_path(self, query: tuple[bytes, bool]) -> None:
        wire, tcp = query
        plain, general = self.both(wire, tcp)
        if plain is not None:
            self.assertEqual(plain, general)

    def test_every_owner_and_type_the_same(self) -> None:
        taken = 0
        for owner in OWNERS:
            for rdtype in TYPES:
                for edns in (False, 0):
                    for tcp in (False, True):
                        wire = dns.message.make_query(owner, rdtype, use_edns=edns).to_wire()
                        plain, general = self.both(wire, tcp)
                        if plain is not None:
                            taken += 1
                            self.assertEqual(plain, general, (owner, rdtype, edns, tcp))
        # Not vacuous: the plain path answers the bulk of them.
        self.assertGreater(taken, len(OWNERS) * len(TYPES) * 4 * 0.7)

    def test_client_cookie_is_ignored_as_the_general_path_does(self) -> None:
        for options in OPTIONS[1:]:
            wire = dns.message.make_query("mail.more.example.", "A", options=options).to_wire()
            plain, general = self.both(wire)
            if options in OPTIONS[1:4]:
                self.assertEqual(plain, general, options)
            else:
                self.assertIsNone(plain, options)

    def test_common_answers_take_the_plain_path(self) -> None:
        for owner, rdtype in [
            ("ns1.example.", "A"),
            ("mail.more.example.", "AAAA"),
            ("more.example.", "MX"),
            ("www.example.", "A"),
            ("x.wild.example.", "TXT"),
            ("sub.example.", "A"),
            ("nx.example.", "A"),
            ("example.net.", "A"),
            ("ns1.example.", "MX"),
            ("example.", "ANY"),
        ]:
            wire = dns.message.make_query(owner, rdtype).to_wire()
            self.assertIsNotNone(
                answer_plain(self.served, wire, tcp=False, now=NOW), (owner, rdtype)
            )

    def test_respond_answers_plain_queries_as_the_general_path(self) -> None:
        wire = dns.message.make_query("mail.more.example.", "A", use_edns=0).to_wire()
        reply = respond(self.served, wire, tcp=False, now=NOW)
        general = respond_general(self.served, wire, tcp=False, now=NOW)
        assert reply is not None and general is not None
        self.assertEqual(reply, general)

    def test_too_big_for_udp_is_left_to_the_general_path(self) -> None:
        wire = dns.message.make_query("big.more.example.", "TXT").to_wire()
        self.assertIsNone(answer_plain(self.served, wire, tcp=False, now=NOW))
        self.assertIsNotNone(answer_plain(self.served, wire, tcp=True, now=NOW))
        reply = respond(self.served, wire, tcp=False, now=NOW)
        assert reply is not None
        self.assertTrue(dns.message.from_wire(reply.wire).flags & dns.flags.TC)

    def test_unusual_requests_are_left_to_the_general_path(self) -> None:
        plain = dns.message.make_query("ns1.example.", "A")
        signed = dns.message.make_query("ns1.example.", "A")
        keyring = dns.tsigkeyring.from_text({"k.": "c2VjcmV0c2VjcmV0"})
        signed.use_tsig(keyring, dns.name.from_text("k."))
        option = dns.message.make_query("ns1.example.", "A", use_edns=0)
        option.use_edns(0, options=[dns.edns.ECSOption("192.0.2.0", 24)])
        notify = dns.message.make_query("example.", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        chaos = dns.message.make_query("version.bind.", "TXT", rdclass="CH")
        base = plain.to_wire()
        two_questions = base[:5] + b"\x02" + base[6:] + base[12:]
        pointer = base[:12] + b"\xc0\x0c" + base[-4:]
        for wire in [
            signed.to_wire(),
            option.to_wire(),
            dns.message.make_query("ns1.example.", "A", use_edns=1).to_wire(),
            notify.to_wire(),
            chaos.to_wire(),
            two_questions,
            pointer,
            base + b"\x00",
            base[:-1],
            base[:11],
            b"\x00\x00\x80" + base[3:],
        ]:
            self.assertIsNone(answer_plain(self.served, wire, tcp=False, now=NOW), wire)
            self.assertIsNone(parse_plain(wire) if wire is not base else None)

    def test_expired_zones_are_left_to_the_general_path(self) -> None:
        expired = Served(self.served.zones, expired=frozenset({dns.name.from_text("example.")}))
        wire = dns.message.make_query("ns1.example.org.", "A").to_wire()
        self.assertIsNone(answer_plain(expired, wire, tcp=False, now=NOW))

    def test_long_names(self) -> None:
        label = "a" * 63
        # 255 bytes in wire form: the longest name.
        longest = ".".join([label, label, label, "a" * 48, "more", "example"]) + "."
        wire = dns.message.make_query(longest, "A").to_wire()
        plain, general = self.both(wire)
        self.assertIsNotNone(plain)
        self.assertEqual(plain, general)
        # The fourth label one byte longer: 256 bytes, not a name (dnspython: FORMERR).
        fourth = 12 + 3 * 64
        too_long = wire[:fourth] + b"\x31a" + wire[fourth + 1 :]
        self.assertIsNone(parse_plain(too_long))
        reply = respond(self.served, too_long, tcp=False, now=NOW)
        assert reply is not None
        self.assertEqual(reply.wire[3] & 0x0F, dns.rcode.FORMERR)
