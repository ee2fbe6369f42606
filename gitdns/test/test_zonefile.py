"""The master-file reader: errors at the exact line and column, dnspython's meaning."""

from __future__ import annotations

import gc

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from twisted.trial.unittest import SynchronousTestCase

from gitdns import zonefile
from gitdns.zonefile import ZoneFileError, read_rrsets, read_zone_file

EXAMPLE = dns.name.from_text("example.")
# Three lines, so that the record after it is on line 4.
HEAD = "$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\n"

# Each broken zone with the error it must give, exactly (file "z").
BROKEN: list[tuple[str, str]] = [
    # record data
    (HEAD + "bad A 300.1.2.3\n", "z:4:7: bad IPv4 address '300.1.2.3'"),
    (HEAD + "www\tA\t300.1.2.3\n", "z:4:7: bad IPv4 address '300.1.2.3'"),
    (HEAD + "  300 A 300.1.2.3\n", "z:4:9: bad IPv4 address '300.1.2.3'"),
    (HEAD + "www A 01.2.3.4\n", "z:4:7: bad IPv4 address '01.2.3.4'"),
    (
        HEAD + "www A 192.0.2.1 192.0.2.2\n",
        "z:4:17: unexpected '192.0.2.2' after the A record data",
    ),
    (HEAD + "www A\n", "z:4:6: missing IPv4 address in A record"),
    (HEAD + "www AAAA 2001:db8::g\n", "z:4:10: bad IPv6 address '2001:db8::g'"),
    (HEAD + "www AAAA 192.0.2.1\n", "z:4:10: bad IPv6 address '192.0.2.1'"),
    (HEAD + "www MX mail\n", "z:4:12: missing mail exchange in MX record"),
    (HEAD + "www MX 70000 mail\n", "z:4:8: MX preference 70000 is out of range (0 to 65535)"),
    (HEAD + "www MX ten mail\n", "z:4:8: bad MX preference 'ten' (expecting a number)"),
    (HEAD + "www SRV 0 5 sip\n", "z:4:16: missing target in SRV record"),
    (HEAD + "www SRV 0 5 99999 sip\n", "z:4:13: SRV port 99999 is out of range (0 to 65535)"),
    (HEAD + "www PTR\n", "z:4:8: missing target name in PTR record"),
    (HEAD + "www CNAME a..b\n", "z:4:11: bad name 'a..b': empty label"),
    (HEAD + "www TXT\n", "z:4:8: missing text in TXT record"),
    (HEAD + 'www TXT "' + "x" * 256 + '"\n', "z:4:9: TXT string of 256 octets (at most 255)"),
    (HEAD + "@ SOA ns hm 1 2 3 4\n", "z:4:20: missing minimum in SOA record"),
    (HEAD + "@ SOA ns hm 1 2 3 4 5 6\n", "z:4:23: unexpected '6' after the SOA record data"),
    (HEAD + "@ SOA ns hm x 2 3 4 5\n", "z:4:13: bad SOA serial 'x' (expecting a number)"),
    (HEAD + "@ SOA ns hm 1 2 3 4 5x\n", "z:4:21: bad SOA minimum '5x'"),
    # other types go through dnspython, located all the same
    (HEAD + "www DS 1 13 2 zz\n", "z:4:15: bad DS record: Non-hexadecimal digit found"),
    (HEAD + "www DS 1 13\n", "z:4:12: incomplete DS record"),
    (HEAD + 'www HINFO "only"\n', "z:4:17: incomplete HINFO record"),
    (HEAD + "www CAA 0 issue\n", "z:4:16: incomplete CAA record"),
    (HEAD + "www DNSKEY 256 3 13 !!!!\n", "z:4:21: bad DNSKEY record: Only base64 data is allowed"),
    (HEAD + 'www NS "ns"\n', "z:4:8: bad NS record: expecting an identifier"),
    (HEAD + "www A \\# 3 010203\n", "z:4:12: bad A record data '010203'"),
    (
        HEAD + "www TYPE65534 abcd\n",
        "z:4:15: bad TYPE65534 record: generic rdata does not start with \\#",
    ),
    # owner, TTL, class, type
    (HEAD + "www AA 192.0.2.1\n", "z:4:5: unknown record type 'AA'"),
    (HEAD + "www 300\n", "z:4:8: missing record type"),
    (HEAD + "www\n", "z:4:4: missing record type"),
    (HEAD + "www 192.0.2.1\n", "z:4:5: expected a TTL, class or record type, found '192.0.2.1'"),
    (HEAD + "www 1h30 A 192.0.2.1\n", "z:4:5: bad TTL '1h30'"),
    (
        HEAD + "www 4294967296 A 192.0.2.1\n",
        "z:4:5: TTL 4294967296 is out of range (0 to 4294967295)",
    ),
    (HEAD + "www CH A 192.0.2.1\n", "z:4:5: class CH records cannot be in an IN zone"),
    (HEAD + "www ANY 192.0.2.1\n", "z:4:5: class ANY records cannot be in an IN zone"),
    (HEAD + "www AXFR \\# 0\n", "z:4:5: record type AXFR cannot be in a zone file"),
    (HEAD + 'www "A" 192.0.2.1\n', "z:4:5: a quoted string where the record type should be"),
    (HEAD + '"www" A 192.0.2.1\n', "z:4:1: the owner name must not be quoted"),
    (HEAD + "a..b A 192.0.2.1\n", "z:4:1: bad name 'a..b': empty label"),
    (HEAD + "x\\1 A 192.0.2.1\n", "z:4:1: bad name 'x\\1': bad escape"),
    (
        HEAD + "x" * 64 + " A 192.0.2.1\n",
        f"z:4:1: bad name '{'x' * 64}': label longer than 63 octets",
    ),
    (
        HEAD + ".".join(["a" * 60] * 5) + " A 192.0.2.1\n",
        f"z:4:1: bad name '{'.'.join(['a' * 60] * 5)}': longer than 255 octets",
    ),
    ("www A 192.0.2.1\n", "z:1:5: no TTL for this record and no $TTL before it"),
    # the zone as a whole
    (
        HEAD + "www A 192.0.2.1\nwww CNAME x\n",
        "z:5:5: www.example. has a CNAME and other records (see line 4)",
    ),
    (
        HEAD + "www CNAME x\nother A 192.0.2.1\nWWW 60 A 192.0.2.1\n",
        "z:6:8: www.example. has a CNAME and other records (see line 4)",
    ),
    (
        HEAD + "www CNAME x\nwww CNAME y\n",
        "z:5:5: www.example. has a second CNAME record, but at most one is allowed (see line 4)",
    ),
    (
        HEAD + "@ SOA ns hm 2 1 1 1 1\n",
        "z:4:3: example. has a second SOA record, but at most one is allowed (see line 2)",
    ),
    (
        HEAD + "sub SOA ns hm 2 1 1 1 1\n",
        "z:4:5: SOA record of sub.example. is not at the zone apex",
    ),
    # directives
    (HEAD + "$INCLUDE /etc/passwd\n", "z:4:1: $INCLUDE is not allowed"),
    (HEAD + "$include other.zone example.\n", "z:4:1: $INCLUDE is not allowed"),
    (
        HEAD + "$GENERATE 1-10 host$ A 192.0.2.$\n",
        "z:4:1: $GENERATE is not supported: write the records out",
    ),
    (HEAD + "$FOO bar\n", "z:4:1: unknown directive '$FOO'"),
    (HEAD + "$TTL\n", "z:4:5: $TTL needs a value"),
    (HEAD + "$TTL 1 2\n", "z:4:8: unexpected '2' after the $TTL value"),
    (HEAD + "$TTL forever\n", "z:4:6: bad $TTL value 'forever'"),
    (HEAD + "$ORIGIN\n", "z:4:8: $ORIGIN needs a value"),
    (HEAD + "$ORIGIN a..b.\n", "z:4:9: bad name 'a..b.': empty label"),
    # tokens, quotes and parentheses
    (HEAD + 'www TXT "unclosed\n', "z:4:9: quoted string not closed on its line"),
    (HEAD + "www A 192.0.2.1 \\\n", "z:4:17: backslash at the end of a line"),
    (HEAD + "www A ( 192.0.2.1\n", "z:4:7: unbalanced parentheses: '(' is not closed"),
    (HEAD + "www A 192.0.2.1 )\n", "z:4:17: unbalanced parentheses: ')' without '('"),
    (HEAD + 'www TXT ( "a"\n "b" ) x(\n', "z:5:9: unbalanced parentheses: '(' is not closed"),
    # the line of the token, not the line the entry started on or the one after
    (
        HEAD + "www A ( 192.0.2.1\n  192.0.2.2 )\n",
        "z:5:3: unexpected '192.0.2.2' after the A record data",
    ),
    (
        HEAD + "www A ( ; comment\n ; more\n\n 300.1.2.3 )\nnext A 192.0.2.1\n",
        "z:7:2: bad IPv4 address '300.1.2.3'",
    ),
    (
        HEAD + '@ SOA ( ns hostmaster 1 ; serial\n  7200 3600 "x" 300 )\n',
        "z:5:13: bad SOA record: expecting an identifier",
    ),
    (HEAD + "ok A 192.0.2.1\r\nbad A 192.0.2.300\r\n", "z:5:7: bad IPv4 address '192.0.2.300'"),
]

# Zones with the tricky parts of the format; each must mean what it means to dnspython.
VALID: list[str] = [
    HEAD + "www A 192.0.2.1\n",
    # omitted owner, TTL and class; class and TTL in either order; TTL units
    """$TTL 1h
@ 300 SOA ns hm ( 1 ; serial
  2h 3h ; refresh retry
  1w 5 )
 NS ns.example.
 NS NS.EXAMPLE.
www IN 60 A 192.0.2.1
www 60 IN A 192.0.2.2
www A 192.0.2.3
 AAAA 2001:DB8::1
 AAAA ::ffff:1.2.3.4
 AAAA ::1.2.3.4
 AAAA 2001:db8:0:0:1:0:0:1
i 1h30m A 192.0.2.4
j CLASS1 A 192.0.2.5
k in TYPE1 192.0.2.6
""",
    # quoted strings, escapes, comments inside quotes, parentheses in and around them
    r"""$TTL 300
@ SOA ns hm 1 2 3 4 5
txt TXT "a;b" "c\"d" e\032f "\200\195\164" ""
txt TXT "spans\
line"
txt2 TXT ( "x"
 "y" ) ; c
t3 TXT "(not a paren)" a"b"c
t4 TXT "ünï"
b\.c A 192.0.2.9
\065bc A 192.0.2.10
h A \# 4 c0000201
g TYPE65280 \# 3 abcdef
""",
    # $ORIGIN, relative names, @, out-of-zone owners (skipped), IDN
    """$TTL 300
@ SOA ns hm 1 2 3 4 5
$ORIGIN sub
a MX 10 @
a MX 20 mail.example.
_s._tcp SRV 0 5 5060 a
$ORIGIN example.
ptr PTR @
cn CNAME www
out.of.zone. A 192.0.2.1
 TXT "still out"
ünï A 192.0.2.11
x.ünï.example. A 192.0.2.12
* A 192.0.2.13
$ORIGIN EXAMPLE.
up A 192.0.2.14
""",
    # no $TTL: the SOA minimum, then the last TTL stated (RFC 2308 mode)
    "@ SOA ns hm 1 2 3 4 55\n@ NS ns\nns A 192.0.2.1\na 100 A 192.0.2.2\nb A 192.0.2.3\n",
    "@ 200 SOA ns hm 1 2 3 4 55\n@ NS ns\n$TTL 77\na A 192.0.2.4\nb 9 A 192.0.2.5\nc A 192.0.2.6\n",
    # blank and comment lines, CRLF and tabs
    "\t; comment only\n\n@ 3600 SOA ns hm 1 2 3 4 5\r\n NS ns\r\nns\tA\t192.0.2.1\r\n",
    # RRsets: lowest TTL, repeated records once, the first spelling of the owner
    """@ 3600 SOA ns hm 1 2 3 4 5
@ NS ns
@ 100 NS ns2
@ 50 NS NS
MixedCase A 192.0.2.1
mixedcase TXT x
MIXEDCASE A 192.0.2.1
a CNAME b
a CNAME B
""",
    # DNSSEC-ish: neutral types beside a CNAME, RRSIG split by covered type
    """@ 3600 SOA ns hm 1 2 3 4 5
@ NS ns
a NSEC b A NSEC RRSIG
a RRSIG A 13 2 300 20300101000000 20200101000000 12345 example. dGVzdA==
a RRSIG NSEC 13 2 300 20300101000000 20200101000000 12345 example. dGVzdA==
a A 192.0.2.1
a DNSKEY 256 3 13 ( dGVz
   dGVzdA== )
c CNAME d
c NSEC e CNAME RRSIG NSEC
c RRSIG CNAME 13 3 300 20300101000000 20200101000000 12345 example. dGVzdA==
""",
    # other types through dnspython
    """$TTL 300
@ SOA ns hm 1 2 3 4 5
k HINFO "pc" "linux"
l CAA 0 issue "letsencrypt.org"
d DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
_443._tcp TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
s SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
n NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .
""",
]


def dnspython(text: str) -> set[str]:
    zone = dns.zone.from_text(text, origin=EXAMPLE, relativize=False, check_origin=False)
    return {
        dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)).to_text()
        for name, rdataset in zone.iterate_rdatasets()
    }


def ours(text: str) -> set[str]:
    return {rrset.to_text() for rrset in read_rrsets(text, EXAMPLE, "z")}


def generated_zone(count: int) -> str:
    """A zone of many names and the common types, like the big ones we read."""
    lines = [
        "$ORIGIN example.",
        "$TTL 3600",
        "@ SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )",
        "@ NS ns1",
        "ns1 A 192.0.2.1",
    ]
    for i in range(count):
        lines.append(f"host{i} 300 IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        if i % 3 == 0:
            lines.append(f'  TXT "v=spf1 -all" "id={i}"')
        if i % 5 == 0:
            lines.append(f"  MX 10 mail{i % 7}")
            lines.append(f"  AAAA 2001:db8::{i:x}")
        if i % 7 == 0:
            lines.append(f"alias{i} CNAME host{i}")
            lines.append(f"_sip._udp.host{i} SRV 0 5 5060 host{i}")
            lines.append(f"{i}.rev PTR host{i}.example.")
    return "\n".join(lines) + "\n"


class ErrorTests(SynchronousTestCase):
    def test_broken_zones(self) -> None:
        wrong = []
        for text, expected in BROKEN:
            try:
                read_rrsets(text, EXAMPLE, "z")
            except ZoneFileError as error:
                if str(error) != expected:
                    wrong.append(f"{text!r}\n  wanted {expected}\n  got    {error}")
            else:
                wrong.append(f"{text!r}\n  wanted {expected}\n  got    no error")
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_error_fields(self) -> None:
        with self.assertRaises(ZoneFileError) as caught:
            read_rrsets(HEAD + "www A ( 192.0.2.1\n  x )\n", EXAMPLE, "zones/example")
        error = caught.exception
        self.assertEqual(
            (error.filename, error.line, error.column, error.message),
            ("zones/example", 5, 3, "unexpected 'x' after the A record data"),
        )

    def test_error_text(self) -> None:
        self.assertEqual(str(ZoneFileError("f", 3, "m", 7)), "f:3:7: m")
        self.assertEqual(str(ZoneFileError("f", 3, "m")), "f:3: m")
        self.assertEqual(str(ZoneFileError("f", None, "m")), "f: m")

    def test_origin_must_be_absolute(self) -> None:
        self.assertRaises(ValueError, read_rrsets, HEAD, dns.name.from_text("x", None), "z")


class MeaningTests(SynchronousTestCase):
    def test_same_as_dnspython(self) -> None:
        for text in VALID:
            self.assertEqual(ours(text), dnspython(text), text)

    def test_generated_zone_same_as_dnspython(self) -> None:
        text = generated_zone(700)
        self.assertEqual(ours(text), dnspython(text))

    def test_tables_emptied_when_full_change_nothing(self) -> None:
        # The reader forgets names, shared data and TXT strings past _REMEMBERED.
        self.patch(zonefile, "_REMEMBERED", 2)
        for text in [*VALID, generated_zone(100)]:
            self.assertEqual(ours(text), dnspython(text), text)

    def test_rrsets_are_merged_by_owner_and_type(self) -> None:
        text = HEAD + "www 300 A 192.0.2.1\nWWW 60 A 192.0.2.2\nwww A 192.0.2.1\nwww TXT x\n"
        rrsets = {(r.name, r.rdtype): r for r in read_rrsets(text, EXAMPLE, "z")}
        www = dns.name.from_text("www.example.")
        self.assertEqual(len(rrsets), 4)
        self.assertEqual(rrsets[www, dns.rdatatype.A].ttl, 60)
        self.assertEqual(len(rrsets[www, dns.rdatatype.A]), 2)
        self.assertEqual(rrsets[www, dns.rdatatype.TXT].ttl, 3600)

    def test_records_outside_the_zone_are_listed(self) -> None:
        text = (
            HEAD
            + "www.example.net. A 192.0.2.1\n TXT x\nin A 192.0.2.2\n$ORIGIN net.\nx A 192.0.2.3\n"
        )
        contents = read_zone_file(text, EXAMPLE, "z")
        self.assertEqual(
            contents.out_of_zone,
            [
                (4, dns.name.from_text("www.example.net.")),
                (5, dns.name.from_text("www.example.net.")),
                (8, dns.name.from_text("x.net.")),
            ],
        )
        names = {rrset.name for rrset in contents.rrsets}
        self.assertEqual(names, {EXAMPLE, dns.name.from_text("in.example.")})

    def test_singleton_types_take_one_record(self) -> None:
        # dnspython keeps the last CNAME silently; BIND and we refuse. The same one twice
        # is still one record.
        text = HEAD + "www CNAME a\nwww CNAME A.example.\n"
        [cname] = [r for r in read_rrsets(text, EXAMPLE, "z") if r.rdtype == dns.rdatatype.CNAME]
        self.assertEqual(len(cname), 1)
        self.assertRaises(
            ZoneFileError, read_rrsets, HEAD + "www CNAME a\nwww CNAME b\n", EXAMPLE, "z"
        )

    def test_rdata_are_dnspythons_own(self) -> None:
        # The common types are built without their constructors: they must not differ.
        text = HEAD + (
            "a A 192.0.2.1\na AAAA 2001:DB8:0:0::1\na MX 10 Mail\na TXT x \"y z\" ''\n"
            "a SRV 1 2 3 t\n@ NS ns2.Other.\nb CNAME a\nc DNAME d\nr PTR a.example.\n"
        )
        for rrset in read_rrsets(text, EXAMPLE, "z"):
            for rd in rrset:
                real = dns.rdata.from_text(
                    dns.rdataclass.IN, rrset.rdtype, rd.to_text(), EXAMPLE, relativize=False
                )
                self.assertIs(type(rd), type(real))
                self.assertEqual(rd, real)
                self.assertEqual(hash(rd), hash(real))
                self.assertEqual(rd.to_text(), real.to_text())
                self.assertEqual(rd.to_wire(), real.to_wire())
                with self.assertRaises(TypeError):
                    rd.rdclass = dns.rdataclass.CH
            self.assertIn(next(iter(rrset)), rrset)

    def test_names_are_shared(self) -> None:
        text = HEAD + "a MX 10 mail\nb MX 10 mail\nc MX 20 mail\n"
        exchanges = [
            rd.exchange for r in read_rrsets(text, EXAMPLE, "z") if r.rdtype == 15 for rd in r
        ]
        self.assertEqual(len(exchanges), 3)
        self.assertIs(exchanges[0], exchanges[2])

    def test_garbage_collection_is_left_as_found(self) -> None:
        self.assertTrue(gc.isenabled())
        read_rrsets(HEAD, EXAMPLE, "z")
        self.assertTrue(gc.isenabled())
        self.assertRaises(ZoneFileError, read_rrsets, HEAD + "x A y\n", EXAMPLE, "z")
        self.assertTrue(gc.isenabled())
        gc.disable()
        try:
            read_rrsets(HEAD, EXAMPLE, "z")
            self.assertFalse(gc.isenabled())
        finally:
            gc.enable()
