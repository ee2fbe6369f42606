"""Loading zones from the repository's files: errors, last good copies, blob reuse."""

from __future__ import annotations

import dns.name
from twisted.trial.unittest import SynchronousTestCase

from gitdns.test.zonedata import EXAMPLE, NESTED
from gitdns.zones import SourceFile, load_zoneset, zone_name

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

    def test_removed_file_stops_being_served(self) -> None:
        first = load_zoneset(files(example=("1", EXAMPLE), **{"nested.example": ("2", NESTED)}))
        second = load_zoneset(files(example=("1", EXAMPLE)), first.zoneset)
        self.assertEqual(list(second.zoneset.zones), [EXAMPLE_NAME])
        self.assertEqual(second.changed, {NESTED_NAME})

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
