"""Minimal edits of master files: what the git diff of an UPDATE shows."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gitdns import zoneedit
from gitdns.zoneedit import EditError, Record, edit_zone_text
from gitdns.zonefile import read_rrsets

ORIGIN = dns.name.from_text("example.")


def record(text: str, origin: dns.name.Name = ORIGIN) -> Record:
    owner, ttl, rdtype, data = text.split(None, 3)
    rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, data, origin)
    return dns.name.from_text(owner, origin), int(ttl), rdata


def records_of(text: str) -> list[Record]:
    rrsets = read_rrsets(text, ORIGIN, "z")
    return [(rrset.name, rrset.ttl, rdata) for rrset in rrsets for rdata in rrset]


ZONE = """\
$ORIGIN example.
$TTL 3600
; the apex
@   SOA ns1 hostmaster (
        7       ; serial
        3600 600 86400 300 )
    NS  ns1
ns1 A   192.0.2.1
www A   192.0.2.10
    A   192.0.2.11  ; second address
mail MX 10 mx.example.net.
$ORIGIN sub.example.
host TXT "one" "two"
"""


class EditTests(SynchronousTestCase):
    def test_removed_record_loses_its_line(self) -> None:
        edited = edit_zone_text(ZONE, ORIGIN, "z", [record("mail 3600 MX 10 mx.example.net.")], [])
        self.assertEqual(edited, ZONE.replace("mail MX 10 mx.example.net.\n", ""))

    def test_next_line_gets_the_owner_it_inherited(self) -> None:
        edited = edit_zone_text(ZONE, ORIGIN, "z", [record("www 3600 A 192.0.2.10")], [])
        self.assertIn("\nwww    A   192.0.2.11  ; second address\n", edited)
        self.assertNotIn("192.0.2.10", edited)

    def test_added_record_follows_its_owner(self) -> None:
        edited = edit_zone_text(ZONE, ORIGIN, "z", [], [record("www 300 A 192.0.2.12")])
        self.assertIn("; second address\nwww\t300\tIN\tA\t192.0.2.12\nmail", edited)

    def test_new_owner_goes_at_the_end_relative_to_the_last_origin(self) -> None:
        edited = edit_zone_text(ZONE, ORIGIN, "z", [], [record("new 60 A 192.0.2.5")])
        self.assertTrue(edited.endswith('"two"\nnew.example.\t60\tIN\tA\t192.0.2.5\n'), edited)

    def test_serial_changed_in_place(self) -> None:
        old = record("@ 3600 SOA ns1 hostmaster 7 3600 600 86400 300")
        new = record("@ 3600 SOA ns1 hostmaster 8 3600 600 86400 300")
        edited = edit_zone_text(ZONE, ORIGIN, "z", [old], [new])
        self.assertEqual(edited, ZONE.replace("7       ; serial", "8       ; serial"))

    def test_owner_under_a_later_origin(self) -> None:
        gone = record('host.sub 3600 TXT "one" "two"')
        self.assertEqual(
            edit_zone_text(ZONE, ORIGIN, "z", [gone], []),
            ZONE.replace('host TXT "one" "two"\n', ""),
        )

    def test_missing_record_is_an_error(self) -> None:
        with self.assertRaises(EditError):
            edit_zone_text(ZONE, ORIGIN, "z", [record("www 3600 A 192.0.2.99")], [])

    def test_file_without_ttl_directive(self) -> None:
        text = "@ 60 SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nx 90 A 192.0.2.2\n"
        text += "y A 192.0.2.3\n"
        # y's TTL (90) comes from the line before it, which the edit does not touch.
        edited = edit_zone_text(text, ORIGIN, "z", [record("y 90 A 192.0.2.3")], [])
        self.assertEqual(edited, text.replace("y A 192.0.2.3\n", ""))


# Generated zones: every edit looking at the selected lines must equal a full scan.
labels = st.sampled_from(["a", "A", "b", "ab", "a-1", "*", "x\\.y", "c"])
addresses = st.integers(1, 4).map(lambda i: f"192.0.2.{i}")


@st.composite
def zones(draw: st.DrawFn) -> str:
    lines = ["$TTL 300", "@ SOA ns1 hostmaster 1 2 3 4 5", "  NS ns1"]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 7))
        owner = draw(labels)
        if kind == 0:
            lines.append(f"{owner} A {draw(addresses)}")
        elif kind == 1:
            lines.append(f"\tA {draw(addresses)} ; inherited")
        elif kind == 2:
            lines.append(f'{owner}.example. 60 TXT ( "t"\n  "{draw(labels)}" )')
        elif kind == 3:
            lines.append(draw(st.sampled_from(["", "; comment (", "  ; indented comment"])))
        elif kind == 4:
            lines.append(draw(st.sampled_from(["$ORIGIN sub.example.", "$ORIGIN example."])))
        elif kind == 5:
            lines.append(f"{owner} MX 10 {draw(labels)}")
        elif kind == 6:
            lines.append(f"@ A {draw(addresses)}")
        else:
            lines.append(f"{owner}0 A {draw(addresses)}")
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return end.join(lines) + end


class SelectedLinesTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(zones(), st.data())
    def test_same_as_full_scan(self, text: str, data: st.DataObject) -> None:
        present = records_of(text)
        removed = data.draw(st.lists(st.sampled_from(present), unique=True)) if present else []
        added = data.draw(
            st.lists(
                st.builds(
                    lambda owner, where, address: record(f"{owner}.{where} 300 A {address}"),
                    labels,
                    st.sampled_from(["example.", "sub.example.", "other.example."]),
                    addresses,
                ),
                max_size=3,
            )
        )
        self.assertEqual(outcome(text, removed, added), full_scan(text, removed, added))


def outcome(text: str, removed: list[Record], added: list[Record]) -> str:
    try:
        return edit_zone_text(text, ORIGIN, "z", removed, added)
    except EditError as error:
        return f"EditError: {error}"


def full_scan(text: str, removed: list[Record], added: list[Record]) -> str:
    def every_line(lines: list[str], text: str, wanted: object) -> range:
        return range(len(lines))

    original = zoneedit._selected
    zoneedit._selected = every_line
    try:
        return outcome(text, removed, added)
    finally:
        zoneedit._selected = original
