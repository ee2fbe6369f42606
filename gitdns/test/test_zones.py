"""Loading zones from the repository's files: errors, last good copies, blob reuse."""

from __future__ import annotations

import gc

import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gitdns.test.zonedata import EXAMPLE, NESTED
from gitdns.zonefile import ZoneFileError, read_rrsets
from gitdns.zones import (
    FREEZE_SIZE,
    NS,
    SourceFile,
    Zone,
    load_zoneset,
    parse_zone,
    zone_name,
)

EXAMPLE_NAME = dns.name.from_text("example.")
NESTED_NAME = dns.name.from_text("nested.example.")


def files(**blobs: tuple[str, str]) -> list[SourceFile]:
    return [SourceFile(name, blob, text.encode()) for name, (blob, text) in blobs.items()]


class LoadTests(SynchronousTestCase):
    def test_every_root_file_is_a_zone_but_keys(self) -> None:
        result = load_zoneset(
            files(
                example=("1", EXAMPLE),
                _keys=("2", "x._update. DNSKEY 0 3 163 AAAA"),
                **{"example._keys": ("3", "garbage"), ".gitignore": ("4", "*.swp")},
            )
        )
        self.assertEqual(list(result.zoneset.zones), [EXAMPLE_NAME])
        self.assertEqual(result.errors, [])

    def test_zone_named_after_file_without_origin(self) -> None:
        text = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n"
        zone = load_zoneset(files(**{"example.com": ("1", text)})).zoneset.zones[
            dns.name.from_text("example.com.")
        ]
        self.assertIn(dns.name.from_text("ns.example.com."), zone.nodes)

    def test_parse_error_has_file_and_line(self) -> None:
        broken = EXAMPLE + "bad A 300.1.2.3\n"
        result = load_zoneset(files(example=("1", broken), **{"nested.example": ("2", NESTED)}))
        self.assertEqual(list(result.zoneset.zones), [NESTED_NAME])
        self.assertEqual(len(result.errors), 1)
        line = EXAMPLE.count("\n") + 1
        self.assertTrue(str(result.errors[0]).startswith(f"example:{line}:"), result.errors)

    def test_missing_soa_and_ns_are_errors(self) -> None:
        result = load_zoneset(files(example=("1", "$ORIGIN example.\nwww 300 A 192.0.2.1\n")))
        self.assertEqual(str(result.errors[0]), "example: no SOA record at the zone apex example.")
        no_ns = "$ORIGIN example.\n@ 300 SOA ns hm 1 2 3 4 5\n"
        result = load_zoneset(files(example=("1", no_ns)))
        self.assertEqual(str(result.errors[0]), "example: no NS records at the zone apex example.")

    def test_include_is_refused(self) -> None:
        result = load_zoneset(files(example=("1", EXAMPLE + "$INCLUDE /etc/passwd\n")))
        self.assertEqual(result.zoneset.zones, {})
        self.assertIn("$INCLUDE", str(result.errors[0]))

    def test_not_utf8(self) -> None:
        result = load_zoneset([SourceFile("example", "1", b"\xff\xfe")])
        self.assertEqual(str(result.errors[0]), "example:1: not UTF-8 text (invalid start byte)")

    def test_broken_reload_keeps_last_good_copy(self) -> None:
        first = load_zoneset(files(example=("1", EXAMPLE)))
        second = load_zoneset(files(example=("2", "garbage garbage\n")), first.zoneset)
        self.assertIs(second.zoneset.zones[EXAMPLE_NAME], first.zoneset.zones[EXAMPLE_NAME])
        self.assertEqual(second.changed, frozenset())
        self.assertEqual(len(second.errors), 1)

    def test_unchanged_blob_is_not_parsed_again(self) -> None:
        first = load_zoneset(files(example=("1", EXAMPLE), **{"nested.example": ("2", NESTED)}))
        changed = NESTED.replace(" 7 ", " 8 ")
        second = load_zoneset(
            files(example=("1", EXAMPLE), **{"nested.example": ("3", changed)}), first.zoneset
        )
        self.assertIs(second.zoneset.zones[EXAMPLE_NAME], first.zoneset.zones[EXAMPLE_NAME])
        self.assertEqual(second.changed, {NESTED_NAME})
        self.assertEqual(second.zoneset.zones[NESTED_NAME].serial, 8)
        # What the zone cache stores, and drops.
        self.assertEqual([z.blob_id for z in second.read], ["3"])
        self.assertEqual(second.dropped, (first.zoneset.sources[NESTED_NAME],))

    def test_removed_file_stops_being_served(self) -> None:
        first = load_zoneset(files(example=("1", EXAMPLE), **{"nested.example": ("2", NESTED)}))
        second = load_zoneset(files(example=("1", EXAMPLE)), first.zoneset)
        self.assertEqual(list(second.zoneset.zones), [EXAMPLE_NAME])
        self.assertEqual(second.changed, {NESTED_NAME})
        self.assertEqual(second.dropped, (first.zoneset.sources[NESTED_NAME],))

    def test_zone_names(self) -> None:
        self.assertEqual(zone_name("example.com"), dns.name.from_text("example.com."))
        for not_a_zone in ("_keys", "example._keys", ".gitignore", "a..b"):
            self.assertIsNone(zone_name(not_a_zone), not_a_zone)

    def test_zones_made_already_are_used_as_they_are(self) -> None:
        first = load_zoneset(files(example=("1", EXAMPLE)))
        made = load_zoneset(files(example=("2", EXAMPLE.replace("192.0.2.25", "192.0.2.26"))))
        ready = made.zoneset.sources[EXAMPLE_NAME]
        # The new blob's data is not read again: the parsed zone comes with it.
        second = load_zoneset([SourceFile("example", "2", b"")], first.zoneset, [ready])
        self.assertIs(second.zoneset.zones[EXAMPLE_NAME], ready.zone)
        self.assertEqual(second.changed, {EXAMPLE_NAME})
        self.assertEqual(second.errors, [])


# Generated zones: owners below the apex, deep ones (empty non-terminals between),
# spelled in varying case, with or without leading white space, under a second $ORIGIN.
_owner = st.sampled_from(["@", "a", "A", "b", "*.w", "x.y.z", "X.Y.z", "deep.x.y.z", "n.s", "s"])
_record = st.one_of(
    st.tuples(st.just("A"), st.sampled_from(["192.0.2.1", "192.0.2.2", "10.0.0.1"])),
    st.tuples(st.just("AAAA"), st.sampled_from(["2001:db8::1", "2001:DB8:0::2", "::1"])),
    st.tuples(st.just("TXT"), st.sampled_from(['"v=spf1 -all"', '"a" "b"', "x", '""'])),
    st.tuples(st.just("MX"), st.sampled_from(["10 mail", "10 MAIL", "20 mail.other."])),
    st.tuples(st.just("NS"), st.sampled_from(["ns1", "ns2.other."])),
    st.tuples(st.just("SRV"), st.sampled_from(["0 5 5060 sip", "1 1 1 sip.other."])),
    st.tuples(st.just("CAA"), st.sampled_from(['0 issue "ca.example"'])),
)
_line = st.tuples(
    _owner, st.booleans(), st.sampled_from(["", "300 ", "60 IN "]), _record, st.booleans()
)


def _zone_text(lines: list[tuple[str, bool, str, tuple[str, str], bool]]) -> str:
    out = ["$TTL 3600", "@ SOA ns1 hostmaster 1 7200 3600 1209600 300", "@ NS ns1"]
    for owner, blank, ttl_class, (rdtype, data), suborigin in lines:
        if suborigin:
            out += ["$ORIGIN sub.example.", f"{owner} {ttl_class}{rdtype} {data}"]
            out.append("$ORIGIN example.")
        else:
            out.append(f"{'' if blank else owner} {ttl_class}{rdtype} {data}")
    return "\n".join(out) + "\n"


class ZoneIndexTests(SynchronousTestCase):
    """parse_zone builds the Zone without Zone(); it must be the one dnspython's reading
    gives: the same names, types, TTLs and records, of dnspython's own classes."""

    def assert_as_dnspython(self, text: str, origin: dns.name.Name = EXAMPLE_NAME) -> Zone:
        zone = parse_zone(origin, text, "example")
        theirs = dns.zone.from_text(text, origin, relativize=False, check_origin=False)
        expected = {
            name: {rdataset.rdtype: rdataset for rdataset in node}
            for name, node in theirs.nodes.items()
            if len(node)
        }
        self.assertEqual(set(zone.nodes), set(expected))
        for name, node in zone.nodes.items():
            self.assertIs(type(node), dict)
            self.assertEqual(set(node), set(expected[name]), name)
            for rdtype, rrset in node.items():
                rdataset = expected[name][rdtype]
                self.assertIs(type(rrset), dns.rrset.RRset)
                self.assertEqual(rrset.name, name)
                self.assertEqual((rrset.rdtype, rrset.covers), (rdataset.rdtype, rdataset.covers))
                self.assertEqual(rrset.ttl, rdataset.ttl)
                self.assertEqual(len(rrset), len(rdataset))
                mine = {rd: rd for rd in rrset}
                for rd in rdataset:
                    self.assertIn(rd, mine)
                    self.assertIs(type(mine[rd]), type(rd))
                    self.assertEqual(hash(mine[rd]), hash(rd))
                    self.assertEqual(mine[rd].to_wire(), rd.to_wire())
        names = {origin}
        for name in expected:
            while name != origin and name.is_subdomain(origin):
                names.add(name)
                name = name.parent()
        self.assertEqual(zone.names, names)
        self.assertIsInstance(zone.names, frozenset)
        cuts = {name for name, node in expected.items() if NS in node and name != origin}
        self.assertEqual(zone.cuts, cuts)
        # The same Zone as Zone() makes from the reader's RRsets.
        made = Zone(origin, read_rrsets(text, origin, "example"))
        self.assertEqual((made.nodes, made.names, made.cuts), (zone.nodes, zone.names, zone.cuts))
        self.assertEqual((made.soa, made.serial), (zone.soa, zone.serial))
        self.assertEqual(made.negative_soa, zone.negative_soa)
        return zone

    @settings(max_examples=150, deadline=None)
    @given(st.lists(_line, max_size=25))
    def test_generated_zones_as_dnspython_reads_them(self, lines: list) -> None:
        self.assert_as_dnspython(_zone_text(lines))

    def test_shared_zones_as_dnspython_reads_them(self) -> None:
        self.assert_as_dnspython(EXAMPLE)
        self.assert_as_dnspython(NESTED, NESTED_NAME)

    def test_repeated_data_added_to_is_not_changed_elsewhere(self) -> None:
        # RRsets of the same MX (or NS, CNAME...) data share one items dict.
        text = "$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n" + "".join(
            f"{name} MX 10 mail\n" for name in ("a", "b", "c")
        )
        text += "b MX 20 mail\n"
        zone = self.assert_as_dnspython(text)
        sizes = {
            name.labels[0]: len(node[dns.rdatatype.MX])
            for name, node in zone.nodes.items()
            if dns.rdatatype.MX in node
        }
        self.assertEqual(sizes, {b"a": 1, b"b": 2, b"c": 1})

    def test_signatures_indexed_as_zone_does(self) -> None:
        # One RRSIG RRset per covered type; Zone() keeps the last one made under RRSIG.
        text = (
            "$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n"
            "a RRSIG A 13 2 300 20300101000000 20200101000000 1 example. dGVzdA==\n"
            "a A 192.0.2.1\n"
            "a RRSIG NSEC 13 2 300 20300101000000 20200101000000 1 example. dGVzdA==\n"
            "a RRSIG A 13 2 300 20300101000000 20200101000000 2 example. dGVzdA==\n"
            "a NSEC b A NSEC RRSIG\n"
        )
        zone = parse_zone(EXAMPLE_NAME, text, "example")
        made = Zone(EXAMPLE_NAME, read_rrsets(text, EXAMPLE_NAME, "example"))
        self.assertEqual(zone.nodes, made.nodes)
        node = zone.nodes[dns.name.from_text("a.example.")]
        self.assertEqual(list(node), list(made.nodes[dns.name.from_text("a.example.")]))
        self.assertEqual(node[dns.rdatatype.RRSIG].covers, dns.rdatatype.NSEC)
        self.assertEqual(len(node[dns.rdatatype.RRSIG]), 1)

    def test_what_a_big_load_made_is_frozen(self) -> None:
        # The collector is not to walk a big zone's objects at its next collections.
        self.assertTrue(gc.isenabled())
        before = gc.get_freeze_count()
        hosts = "".join(f"h{i} A 192.0.2.1\n" for i in range(FREEZE_SIZE // 14))
        zone = parse_zone(EXAMPLE_NAME, EXAMPLE + hosts, "example")
        self.assertGreater(gc.get_freeze_count(), before)
        self.assertTrue(gc.isenabled())
        self.assertNotIn(zone, gc.get_objects())
        # A small one is not frozen (nor is what else is alive at that moment).
        frozen = gc.get_freeze_count()
        parse_zone(EXAMPLE_NAME, EXAMPLE, "example")
        self.assertEqual(gc.get_freeze_count(), frozen)
        self.assertRaises(ZoneFileError, parse_zone, EXAMPLE_NAME, "x A 192.0.2.1\n", "example")
        self.assertTrue(gc.isenabled())
