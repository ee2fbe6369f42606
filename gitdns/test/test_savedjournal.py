"""The IXFR journal over a restart: kept only where it still ends at the zone served."""

from __future__ import annotations

import os

import dns.name
from twisted.trial.unittest import SynchronousTestCase

from gitdns.savedjournal import FILE_NAME, load_journal, save_journal
from gitdns.test.zonedata import EXAMPLE, zoneset
from gitdns.xfr import zone_delta

ORIGIN = dns.name.from_text("example.")


def example(serial: int, extra: str = "") -> str:
    return EXAMPLE.replace("2024010101", str(serial)) + extra


class SavedJournalTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        one = zoneset(example=example(1))
        self.two = zoneset(example=example(2, "new 300 IN A 192.0.2.9\n"))
        self.journal = {ORIGIN: (zone_delta(one.zones[ORIGIN], self.two.zones[ORIGIN]),)}

    def test_kept_for_the_same_file(self) -> None:
        save_journal(self.directory, self.journal, self.two)
        self.assertEqual(load_journal(self.directory, self.two), self.journal)
        # Read once: a later crash must not bring it back.
        self.assertFalse(os.path.exists(os.path.join(self.directory, FILE_NAME)))
        self.assertEqual(load_journal(self.directory, self.two), {})

    def test_dropped_when_the_file_changed_even_with_the_same_serial(self) -> None:
        save_journal(self.directory, self.journal, self.two)
        edited = zoneset(example=example(2, "new 300 IN A 192.0.2.10\n"))
        self.assertEqual(load_journal(self.directory, edited), {})

    def test_dropped_when_the_serial_moved_on(self) -> None:
        save_journal(self.directory, self.journal, self.two)
        three = zoneset(example=example(3, "new 300 IN A 192.0.2.9\n"))
        self.assertEqual(load_journal(self.directory, three), {})

    def test_damaged_file_is_ignored(self) -> None:
        with open(os.path.join(self.directory, FILE_NAME), "wb") as damaged:
            damaged.write(b"\x80\x05not a pickle")
        self.assertEqual(load_journal(self.directory, self.two), {})

    def test_no_file(self) -> None:
        self.assertEqual(load_journal(self.directory, self.two), {})
