"""The parsed-zone cache on disk: round trip, invalidation, broken entries, clean-up."""

from __future__ import annotations

import os
import pickle

import dns.name
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gitdns import zonecache
from gitdns.test.zonedata import EXAMPLE, NESTED
from gitdns.zonecache import ZoneCache, entry_name
from gitdns.zones import LoadedZone, SourceFile, Zone, load_zoneset, parse_zone

EXAMPLE_NAME = dns.name.from_text("example.")
NESTED_NAME = dns.name.from_text("nested.example.")
BLOB = "a" * 40
OTHER_BLOB = "b" * 40


def example() -> Zone:
    return parse_zone(EXAMPLE_NAME, EXAMPLE, "example")


def same_zone(test: SynchronousTestCase, got: Zone | None, expected: Zone) -> None:
    test.assertIsNotNone(got)
    assert got is not None
    test.assertEqual(got.origin, expected.origin)
    test.assertEqual(got.serial, expected.serial)
    test.assertEqual(got.nodes, expected.nodes)
    test.assertEqual(got.names, expected.names)
    test.assertEqual(got.cuts, expected.cuts)
    test.assertEqual(got.negative_soa, expected.negative_soa)
    test.assertEqual(
        sorted(rrset.to_text() for rrset in got.rrsets()),
        sorted(rrset.to_text() for rrset in expected.rrsets()),
    )


class CacheTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()

    def cache(self, version: str = "v-test") -> ZoneCache:
        return ZoneCache(self.directory, version)

    def entries(self, version: str = "v-test") -> list[str]:
        return sorted(os.listdir(os.path.join(self.directory, version)))

    def test_round_trip(self) -> None:
        zone = example()
        self.cache().write_blocking({entry_name(BLOB, EXAMPLE_NAME): zone})
        # A new instance: as after a restart.
        same_zone(self, self.cache().get(BLOB, EXAMPLE_NAME), zone)

    def test_restored_objects_behave(self) -> None:
        zone = example()
        restored = zonecache.loads(zonecache.dumps(zone))
        assert isinstance(restored, Zone)
        for rrset in restored.rrsets():
            original = zone.nodes[rrset.name][rrset.rdtype]
            self.assertEqual(hash(rrset.name), hash(original.name))
            self.assertEqual({hash(rd) for rd in rrset}, {hash(rd) for rd in original})
            self.assertEqual(rrset.to_text(), original.to_text())
            self.assertEqual(rrset, original)
        with self.assertRaises(TypeError):
            restored.origin.labels = ()  # still immutable

    def test_miss(self) -> None:
        self.assertIsNone(self.cache().get(BLOB, EXAMPLE_NAME))

    def test_same_blob_other_origin_is_a_miss(self) -> None:
        self.cache().write_blocking({entry_name(BLOB, EXAMPLE_NAME): example()})
        self.assertIsNone(self.cache().get(BLOB, NESTED_NAME))

    def test_other_program_version_reads_nothing_and_removes_old_entries(self) -> None:
        self.cache("v-old").write_blocking({entry_name(BLOB, EXAMPLE_NAME): example()})
        new = self.cache("v-new")
        self.assertIsNone(new.get(BLOB, EXAMPLE_NAME))
        new.write_blocking({})
        self.assertEqual(os.listdir(self.directory), ["v-new"])

    def test_program_version_is_stable(self) -> None:
        self.assertEqual(zonecache.program_version(), zonecache.program_version())
        self.assertIn(f"v{zonecache.FORMAT}-", zonecache.program_version())

    def broken(self, data: bytes) -> None:
        name = entry_name(BLOB, EXAMPLE_NAME)
        self.cache().write_blocking({name: example()})
        path = os.path.join(self.directory, "v-test", name)
        with open(path, "wb") as entry:
            entry.write(data)
        with capturedLogs() as events:
            self.assertIsNone(self.cache().get(BLOB, EXAMPLE_NAME))
        self.assertEqual(len(events), 1)
        self.assertIn("unusable", events[0]["log_format"])
        self.assertFalse(os.path.exists(path))

    def test_truncated_entry_is_ignored(self) -> None:
        self.broken(zonecache.dumps(example())[:100])

    def test_garbage_entry_is_ignored(self) -> None:
        self.broken(b"\x80\x05not a pickle at all")

    def test_entry_of_another_zone_is_ignored(self) -> None:
        self.broken(zonecache.dumps(parse_zone(NESTED_NAME, NESTED, "nested.example")))

    def test_entry_that_is_no_zone_is_ignored(self) -> None:
        self.broken(pickle.dumps({"not": "a zone"}))

    def test_broken_entry_is_written_again(self) -> None:
        cache, name = self.cache(), entry_name(BLOB, EXAMPLE_NAME)
        cache.write_blocking({name: example()})
        with open(os.path.join(self.directory, "v-test", name), "wb") as entry:
            entry.write(b"broken")
        self.assertIsNone(cache.get(BLOB, EXAMPLE_NAME))
        self.flushLoggedErrors()
        cache.write_blocking({name: example()})
        same_zone(self, cache.get(BLOB, EXAMPLE_NAME), example())

    def test_unused_entries_removed(self) -> None:
        cache = self.cache()
        first, second = entry_name(BLOB, EXAMPLE_NAME), entry_name(OTHER_BLOB, EXAMPLE_NAME)
        cache.write_blocking({first: example(), second: example()})
        self.assertEqual(self.entries(), sorted([first, second]))
        cache.write_blocking({second: example()})
        self.assertEqual(self.entries(), [second])

    def test_restart_removes_stale_and_half_written_entries(self) -> None:
        first, second = entry_name(BLOB, EXAMPLE_NAME), entry_name(OTHER_BLOB, EXAMPLE_NAME)
        self.cache().write_blocking({first: example(), second: example()})
        with open(os.path.join(self.directory, "v-test", f"{first}.tmp"), "wb") as half:
            half.write(b"\x80")
        self.cache().write_blocking({first: example()})
        self.assertEqual(self.entries(), [first])

    def test_unpicklable_zone_is_not_cached(self) -> None:
        zone = example()
        unpicklable = parse_zone(NESTED_NAME, NESTED, "nested.example")
        unpicklable.cuts = frozenset([lambda: None])  # type: ignore[list-item]
        name, bad = entry_name(BLOB, EXAMPLE_NAME), entry_name(OTHER_BLOB, NESTED_NAME)
        with capturedLogs() as events:
            self.cache().write_blocking({name: zone, bad: unpicklable})
        self.assertEqual(self.entries(), [name])
        self.assertEqual(len(events), 1)


class LoadFromCacheTests(SynchronousTestCase):
    def test_hits_are_not_parsed_and_misses_are(self) -> None:
        cache = ZoneCache(self.mktemp(), "v-test")
        cache.write_blocking({entry_name(BLOB, EXAMPLE_NAME): example()})
        files = [
            # No text: a hit must not need it.
            SourceFile("example", BLOB, b""),
            SourceFile("nested.example", OTHER_BLOB, NESTED.encode()),
        ]
        result = load_zoneset(files, cached=cache.get)
        self.assertEqual(result.errors, [])
        self.assertEqual(result.changed, {EXAMPLE_NAME, NESTED_NAME})
        same_zone(self, result.zoneset.zones[EXAMPLE_NAME], example())
        self.assertEqual(result.zoneset.sources[EXAMPLE_NAME].blob_id, BLOB)
        self.assertEqual(result.zoneset.zones[NESTED_NAME].serial, 7)

    def test_known_blobs_are_not_looked_up(self) -> None:
        first = load_zoneset([SourceFile("example", BLOB, EXAMPLE.encode())])
        asked: list[str] = []

        def cached(blob_id: str, origin: dns.name.Name) -> Zone | None:
            asked.append(blob_id)
            return None

        again = load_zoneset(
            [SourceFile("example", BLOB, b""), SourceFile("nested.example", OTHER_BLOB, b"x")],
            first.zoneset,
            cached=cached,
        )
        self.assertEqual(asked, [OTHER_BLOB])
        self.assertEqual(again.changed, frozenset())


class KeepTests(TestCase):
    def test_keep_writes_the_newest_set_in_a_thread(self) -> None:
        cache = ZoneCache(self.mktemp(), "v-test")
        zone = example()
        cache.keep([LoadedZone(BLOB, zone, "example")])
        # Asked for again while the first write runs: only the newest set is kept.
        done = cache.keep([LoadedZone(OTHER_BLOB, zone, "example")])

        def written(_: object) -> None:
            self.assertEqual(os.listdir(cache.directory), [entry_name(OTHER_BLOB, EXAMPLE_NAME)])
            same_zone(self, cache.get(OTHER_BLOB, EXAMPLE_NAME), zone)

        return done.addCallback(written)
