"""The zone cache: a stored zone is the parsed zone; anything doubtful is a miss."""

from __future__ import annotations

import os

import dns.name
import dns.rdatatype
from twisted.python.monkey import MonkeyPatcher
from twisted.trial.unittest import SynchronousTestCase

from gitdns import zonecache
from gitdns.test.zonedata import EXAMPLE, NESTED
from gitdns.zonecache import ZoneCache
from gitdns.zones import LoadedZone, SourceFile, Zone, load_zoneset, parse_zone

# Every kind of data the cache keeps its own way, and types it keeps as wire forms.
VARIED = """\
$ORIGIN Varied.Example.
$TTL 300
@        SOA   ns1.Varied.Example. hostmaster 7 7200 3600 1209600 60
@        NS    ns1
@        NS    ns2.elsewhere.
@        MX    10 mail
@        MX    20 mail.elsewhere.
@        TXT   "v=spf1 -all" "two" ""
@        CAA   0 issue "letsencrypt.org"
ns1      A     192.0.2.1
ns1      A     192.0.2.2
ns1      AAAA  2001:db8::1
mail  60 A     192.0.2.25
Mail2    A     192.0.2.25
_sip._tcp SRV  0 5 5060 sip
sip      A     192.0.2.60
alias    CNAME sip
rev      PTR   host.elsewhere.
dn       DNAME elsewhere.
*.wild   TXT   "wild"
deep.a.b A     192.0.2.3
sub      NS    ns.sub
sub      DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub   A     192.0.2.54
_443._tcp TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
host     SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
naptr    NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .
esc\\.aped A   192.0.2.9
signed   A     192.0.2.10
signed   RRSIG A 13 3 300 20300101000000 20200101000000 12345 Varied.Example. AAAA
signed   RRSIG NSEC 13 3 300 20300101000000 20200101000000 12345 Varied.Example. AAAA
signed   NSEC  zz A RRSIG NSEC
unknown  TYPE65000 \\# 3 abcdef
"""
ZONES = {"example.": EXAMPLE, "nested.example.": NESTED, "Varied.Example.": VARIED}


def assert_same(test: SynchronousTestCase, made: Zone, parsed: Zone) -> None:
    """made is parsed as the server would use it: every index, record and TTL."""
    test.assertEqual(made.nodes, parsed.nodes)
    test.assertEqual(
        (made.names, made.cuts, made.serial), (parsed.names, parsed.cuts, parsed.serial)
    )
    test.assertEqual(made.negative_soa.to_text(), parsed.negative_soa.to_text())
    for owner, node in parsed.nodes.items():
        for key, rrset in node.items():
            other = made.nodes[owner][key]
            test.assertEqual(other.to_text(), rrset.to_text())
            test.assertEqual(str(other.name), str(owner))  # the owner spelled the same
            test.assertIsInstance(other.rdtype, dns.rdatatype.RdataType)
            test.assertIsInstance(other.covers, dns.rdatatype.RdataType)


class ZoneCacheTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.cache = ZoneCache(os.path.abspath(self.mktemp()))

    def stored(self, origin: str, text: str, blob_id: str = "b" * 40) -> tuple[Zone, Zone | None]:
        name = dns.name.from_text(origin)
        zone = parse_zone(name, text, origin)
        self.cache.put([LoadedZone(blob_id, zone, origin)])
        return zone, self.cache.get(blob_id, name)

    def test_stored_zone_is_the_parsed_zone(self) -> None:
        for origin, text in ZONES.items():
            parsed, made = self.stored(origin, text)
            assert made is not None
            assert_same(self, made, parsed)

    def test_repeated_data_is_shared_as_the_reader_shares_it(self) -> None:
        def sharing(zone: Zone) -> list[int]:
            """Which RRsets hold the same items dict: each one's first holder."""
            first: dict[int, int] = {}
            rrsets = [rrset for node in zone.nodes.values() for rrset in node.values()]
            return [first.setdefault(id(rrset.items), n) for n, rrset in enumerate(rrsets)]

        text = VARIED + "".join(f"h{i} MX 10 mail\nt{i} TXT same\n" for i in range(50))
        parsed, made = self.stored("Varied.Example.", text)
        assert made is not None
        self.assertEqual(sharing(made), sharing(parsed))
        self.assertLess(len(set(sharing(parsed))), len(sharing(parsed)) - 40)
        soa = made.nodes[made.origin][dns.rdatatype.SOA][0]
        self.assertIs(soa.mname, next(n for n in made.nodes if n == soa.mname))

    def test_entries_marshalled_in_chunks(self) -> None:
        # Chunks of a few values: sharing crosses chunk boundaries.
        self.patch(zonecache, "CHUNK", 3)
        self.test_repeated_data_is_shared_as_the_reader_shares_it()
        self.test_stored_zone_is_the_parsed_zone()

    def test_another_origin_or_blob_is_a_miss(self) -> None:
        self.stored("example.", EXAMPLE, "a" * 40)
        self.assertIsNone(self.cache.get("a" * 40, dns.name.from_text("example.org.")))
        self.assertIsNone(self.cache.get("c" * 40, dns.name.from_text("example.")))

    def test_damaged_entry_is_a_miss_and_removed(self) -> None:
        for damage in (
            lambda data: data[: len(data) // 2],
            lambda data: data[:-1] + b"!",
            lambda data: b"",
        ):
            self.stored("example.", EXAMPLE)
            (path,) = (
                os.path.join(self.cache.directory, f) for f in os.listdir(self.cache.directory)
            )
            with open(path, "rb") as entry:
                data = entry.read()
            with open(path, "wb") as entry:
                entry.write(damage(data))
            self.assertIsNone(self.cache.get("b" * 40, dns.name.from_text("example.")))
            self.assertEqual(os.listdir(self.cache.directory), [])

    def test_entry_of_another_program_is_a_miss(self) -> None:
        patched = MonkeyPatcher((zonecache, "PROGRAM", b"another build"))
        patched.runWithPatches(self.stored, "example.", EXAMPLE)
        self.assertIsNone(self.cache.get("b" * 40, dns.name.from_text("example.")))
        self.assertEqual(os.listdir(self.cache.directory), [])

    def test_keep_only_what_is_served(self) -> None:
        kept, _ = self.stored("example.", EXAMPLE, "a" * 40)
        self.stored("nested.example.", NESTED, "c" * 40)
        removed = self.cache.keep_only([LoadedZone("a" * 40, kept, "example")])
        self.assertEqual(removed, 1)
        self.assertIsNotNone(self.cache.get("a" * 40, dns.name.from_text("example.")))
        self.assertIsNone(self.cache.get("c" * 40, dns.name.from_text("nested.example.")))

    def test_remove(self) -> None:
        kept, _ = self.stored("example.", EXAMPLE, "a" * 40)
        gone, _ = self.stored("nested.example.", NESTED, "c" * 40)
        self.cache.remove(
            [LoadedZone("c" * 40, gone, "nested.example"), LoadedZone("d" * 40, kept, "x")]
        )
        self.assertIsNotNone(self.cache.get("a" * 40, kept.origin))
        self.assertIsNone(self.cache.get("c" * 40, gone.origin))

    def test_load_takes_stored_zones_without_reading_their_text(self) -> None:
        parsed, _ = self.stored("example.", EXAMPLE, "a" * 40)
        files = [
            # Not a zone file at all: had it been read, this load would have failed.
            SourceFile("example.", "a" * 40, b"\xff not a zone"),
            SourceFile("nested.example.", "c" * 40, NESTED.encode()),
        ]
        result = load_zoneset(files, stored=self.cache.get)
        self.assertEqual(result.errors, [])
        self.assertEqual(result.stored, 1)
        self.assertEqual([z.filename for z in result.read], ["nested.example."])
        assert_same(self, result.zoneset.zones[parsed.origin], parsed)
