"""Prerendered tables answer with the general path's bytes, or step aside; they are
served only for the zone version they were built from."""

from __future__ import annotations

import dataclasses
import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
from hypothesis import HealthCheck, given, settings
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from gitdns.authority import GitAuthority
from gitdns.plain import UDP_PAYLOAD
from gitdns.prerendered import (
    Table,
    answer_from_tables,
    build_table,
    kept_tables,
    still_served,
    wire_key,
)
from gitdns.prerenderer import QUIET, Prerenderer
from gitdns.respond import Served, respond, respond_general
from gitdns.test.test_plain import (
    FILES,
    NOW,
    OPTIONS,
    OWNERS,
    TYPES,
    fixed_order,
    queries,
)
from gitdns.zones import LoadResult, SourceFile, ZoneSet, load_zoneset

# What the tables must get right beside test_plain's zones: additional records from
# this zone, targets in another zone or in none, chains, one and several records.
TABLE = """\
$ORIGIN table.example.
$TTL 300
@        SOA  ns1 hostmaster 1 3600 600 86400 60
@        NS   ns1
ns1      A    192.0.2.1
mx       MX   10 mail
mail     A    192.0.2.2
mail     AAAA 2001:db8::2
outmx    MX   10 mail.elsewhere.test.
othermx  MX   10 ns.example.org.
srv      SRV  0 0 443 mail
alias    CNAME mail
alias2   CNAME alias
far      CNAME www.elsewhere.test.
mxalias  CNAME mx
two      A    192.0.2.3
two      A    192.0.2.4
deep.ent.x A  192.0.2.5
*.wild   A    192.0.2.6
sub      NS   ns.sub
ns.sub   A    192.0.2.7
Up.Case  TXT  "case"
hostmaster.x TXT "below the SOA's mailbox"
ptr      PTR  Mail.Table.Example.
"""

ALL_FILES = {**FILES, "table.example": TABLE}
TABLE_OWNERS = [
    "table.example.",
    "ns1.table.example.",
    "mx.table.example.",
    "mail.table.example.",
    "outmx.table.example.",
    "othermx.table.example.",
    "srv.table.example.",
    "alias.table.example.",
    "alias2.table.example.",
    "far.table.example.",
    "mxalias.table.example.",
    "two.table.example.",
    "deep.ent.x.table.example.",
    "ent.x.table.example.",
    "x.table.example.",
    "a.wild.table.example.",
    "wild.table.example.",
    "*.wild.table.example.",
    "sub.table.example.",
    "ns.sub.table.example.",
    "up.case.table.example.",
    "hostmaster.table.example.",
    "hostmaster.x.table.example.",
    "ptr.table.example.",
]
ASKED = OWNERS + TABLE_OWNERS


def load(files: dict[str, str], previous: ZoneSet | None = None) -> LoadResult:
    sources = [
        SourceFile(name, f"blob-{name}-{hash(text)}", text.encode()) for name, text in files.items()
    ]
    result = load_zoneset(sources, previous)
    assert not result.errors, result.errors
    return result


def tables_for(zoneset: ZoneSet) -> dict[bytes, Table | None]:
    """Every zone's table, as the prerenderer makes them."""
    tables = kept_tables({}, zoneset, zoneset.zones.keys())
    for zone in zoneset.zones.values():
        table = build_table(zone, zoneset)
        assert table is not None
        tables[table.key] = table
    return tables


def with_tables(zoneset: ZoneSet) -> Served:
    return Served(zoneset, tables=tables_for(zoneset))


def prerendered(served: Served, wire: bytes, tcp: bool) -> bytes | None:
    """The table's answer to wire, None when it steps aside."""
    found = answer_from_tables(served.tables, wire, tcp)
    return None if found is None else found[0]


class SameBytesTests(SynchronousTestCase):
    def setUp(self) -> None:
        # Records of one RRset come in one order: the general path shuffles them.
        self.patch(random, "shuffle", fixed_order)
        self.plain = Served(load(ALL_FILES).zoneset)
        self.served = with_tables(self.plain.zones)

    def check(self, wire: bytes, tcp: bool) -> bytes | None:
        table = prerendered(self.served, wire, tcp)
        if table is not None:
            general = respond_general(self.plain, wire, tcp=tcp, now=NOW)
            assert general is not None
            self.assertEqual(table, general.wire, dns.message.from_wire(wire).question)
        return table

    @settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(queries(ASKED))
    def test_same_bytes_as_general_path(self, query: tuple[bytes, bool]) -> None:
        self.check(*query)

    def test_every_name_and_type(self) -> None:
        taken = 0
        for owner in ASKED + [f"nx.{owner}" for owner in ASKED if owner != "."]:
            for rdtype in TYPES:
                for edns in (False, 0):
                    for tcp in (False, True):
                        wire = dns.message.make_query(owner, rdtype, use_edns=edns).to_wire()
                        taken += self.check(wire, tcp) is not None
        # Not vacuous: the tables answer the bulk of them.
        self.assertGreater(taken, len(ASKED) * 2 * len(TYPES) * 4 * 0.4)

    def test_answered_from_the_table(self) -> None:
        for owner, rdtype in [
            ("ns1.table.example.", "A"),
            ("mail.table.example.", "AAAA"),
            ("mx.table.example.", "MX"),  # with the target's addresses
            ("outmx.table.example.", "MX"),  # a target in none of our zones
            ("srv.table.example.", "SRV"),
            ("alias2.table.example.", "A"),  # a chain
            ("alias2.table.example.", "TXT"),  # a chain to NODATA
            ("mxalias.table.example.", "MX"),
            ("far.table.example.", "A"),  # a chain out of our zones
            ("ent.x.table.example.", "A"),  # an empty non-terminal: NODATA
            ("nx.table.example.", "A"),  # NXDOMAIN
            ("nx.ent.x.table.example.", "TXT"),
            ("up.case.table.example.", "TXT"),
            ("ptr.table.example.", "PTR"),
            ("*.wild.table.example.", "A"),  # the wildcard's own name
            ("www.example.", "A"),
            ("x.nested.example.", "MX"),
        ]:
            wire = dns.message.make_query(owner, rdtype, use_edns=0).to_wire()
            self.assertIsNotNone(self.check(wire, False), (owner, rdtype))

    def test_left_to_the_general_path(self) -> None:
        for owner, rdtype in [
            ("two.table.example.", "A"),  # two records: shuffled each time
            ("table.example.", "ANY"),
            ("sub.table.example.", "DS"),
            ("sub.table.example.", "A"),  # a referral
            ("x.sub.table.example.", "A"),
            ("ns.sub.table.example.", "A"),
            ("othermx.table.example.", "MX"),  # another zone's addresses
            ("a.wild.table.example.", "A"),  # synthesised
            ("nx.wild.table.example.", "TXT"),
            # The SOA's names compress against these questions.
            ("ns1.table.example.", "TXT"),
            ("hostmaster.table.example.", "A"),
            ("a.hostmaster.table.example.", "A"),
            ("www.elsewhere.test.", "A"),  # no zone of ours
            ("away.example.", "A"),  # a chain into another zone
        ]:
            wire = dns.message.make_query(owner, rdtype).to_wire()
            self.assertIsNone(prerendered(self.served, wire, tcp=True), (owner, rdtype))
            # Still answered, by the general path's rules.
            reply = respond(self.served, wire, tcp=True, now=NOW)
            general = respond_general(self.plain, wire, tcp=True, now=NOW)
            assert reply is not None and general is not None
            self.assertEqual(reply.wire, general.wire)

    def test_client_cookie_is_ignored_as_the_general_path_does(self) -> None:
        for options in OPTIONS[1:4]:
            wire = dns.message.make_query("mail.table.example.", "A", options=options).to_wire()
            self.assertIsNotNone(self.check(wire, False), options)
        for options in OPTIONS[4:]:
            wire = dns.message.make_query("mail.table.example.", "A", options=options).to_wire()
            self.assertIsNone(prerendered(self.served, wire, False), options)
        # A zero byte inside a label is not the end of the name: left to the general path.
        name = dns.name.Name([b"a\x00b", b"table", b"example", b""])
        wire = dns.message.make_query(name, "A", options=OPTIONS[1]).to_wire()
        self.assertIsNone(prerendered(self.served, wire, False))
        self.assertEqual(respond(self.served, wire, tcp=False, now=NOW).wire[3] & 0x0F, 3)

    def test_question_echoed_as_sent(self) -> None:
        query = dns.message.make_query("mAiL.TABLE.example.", "A", use_edns=0)
        query.flags |= dns.flags.CD
        wire = query.to_wire()
        answer = prerendered(self.served, wire, tcp=False)
        assert answer is not None
        response = dns.message.from_wire(answer)
        self.assertEqual(response.question[0].name.labels[0], b"mAiL")
        self.assertEqual(response.id, query.id)
        self.assertTrue(response.flags & dns.flags.RD and response.flags & dns.flags.CD)
        self.assertEqual(response.payload, UDP_PAYLOAD)

    def test_too_big_is_left_to_the_general_path(self) -> None:
        wire = dns.message.make_query("big.more.example.", "TXT").to_wire()
        self.assertIsNone(prerendered(self.served, wire, tcp=False))
        self.assertIsNotNone(prerendered(self.served, wire, tcp=True))
        reply = respond(self.served, wire, tcp=False, now=NOW)
        assert reply is not None
        self.assertTrue(dns.message.from_wire(reply.wire).flags & dns.flags.TC)


ORIGIN = dns.name.from_text("table.example.")
CHANGED = TABLE.replace("192.0.2.2", "192.0.2.22").replace(" 1 3600", " 2 3600")


class VersionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.first = load(ALL_FILES)
        self.served = with_tables(self.first.zoneset)

    def ask(self, served: Served, name: str, rdtype: str = "A") -> dns.message.Message:
        wire = dns.message.make_query(name, rdtype).to_wire()
        reply = respond(served, wire, tcp=False, now=NOW)
        assert reply is not None
        return dns.message.from_wire(reply.wire)

    def test_changed_zone_has_no_table(self) -> None:
        result = load({**ALL_FILES, "table.example": CHANGED}, self.first.zoneset)
        tables = kept_tables(self.served.tables, result.zoneset, result.changed)
        self.assertIsNone(tables[wire_key(ORIGIN)])
        org = wire_key(dns.name.from_text("example.org."))
        self.assertIs(tables[org], self.served.tables[org])
        served = Served(result.zoneset, tables=tables)
        self.assertEqual(self.ask(served, "mail.table.example.").answer[0][0].address, "192.0.2.22")

    def test_removed_zone_is_gone(self) -> None:
        files = {name: text for name, text in ALL_FILES.items() if name != "table.example"}
        result = load(files, self.first.zoneset)
        tables = kept_tables(self.served.tables, result.zoneset, result.changed)
        self.assertNotIn(wire_key(ORIGIN), tables)
        served = Served(result.zoneset, tables=tables)
        # From example. now, not from the table of table.example.
        answer = self.ask(served, "mail.table.example.")
        self.assertEqual(answer.rcode(), dns.rcode.NXDOMAIN)
        self.assertEqual(answer.authority[0].name, dns.name.from_text("example."))

    def test_zone_added_above_a_target_outside(self) -> None:
        # outmx's and far's targets were in none of our zones: no longer.
        elsewhere = "$ORIGIN elsewhere.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\n"
        files = {**ALL_FILES, "elsewhere.test": elsewhere + "www 300 A 192.0.2.9\n"}
        result = load(files, self.first.zoneset)
        tables = kept_tables(self.served.tables, result.zoneset, result.changed)
        self.assertIsNone(tables[wire_key(ORIGIN)])
        org = wire_key(dns.name.from_text("example.org."))
        self.assertIs(tables[org], self.served.tables[org])
        served = Served(result.zoneset, tables=tables)
        self.assertEqual(len(self.ask(served, "far.table.example.").answer), 2)

    def test_zone_added_inside(self) -> None:
        inside = "$ORIGIN x.table.example.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\n"
        files = {**ALL_FILES, "x.table.example": inside}
        result = load(files, self.first.zoneset)
        tables = kept_tables(self.served.tables, result.zoneset, result.changed)
        self.assertIsNone(tables[wire_key(ORIGIN)])
        served = Served(result.zoneset, tables=tables)
        self.assertEqual(self.ask(served, "deep.ent.x.table.example.").rcode(), dns.rcode.NXDOMAIN)

    def test_still_served(self) -> None:
        table = self.served.tables[wire_key(ORIGIN)]
        assert table is not None
        zoneset = self.first.zoneset
        self.assertTrue(still_served(table, zoneset, zoneset))
        changed = load({**ALL_FILES, "table.example": CHANGED}, zoneset).zoneset
        self.assertFalse(still_served(table, changed, zoneset))
        # A zone added elsewhere: nothing the table relies on.
        other = "$ORIGIN other.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\n"
        grown = load({**ALL_FILES, "other.test": other}, zoneset).zoneset
        self.assertTrue(still_served(table, grown, zoneset))
        elsewhere = "$ORIGIN elsewhere.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\n"
        moved = load({**ALL_FILES, "elsewhere.test": elsewhere}, zoneset).zoneset
        self.assertFalse(still_served(table, moved, zoneset))


class HandRun:
    """Stands for the build thread: builds wait until the test finishes them."""

    def __init__(self) -> None:
        self.running: list[tuple[tuple, defer.Deferred]] = []

    def __call__(self, function, *args):  # type: ignore[no-untyped-def]
        d: defer.Deferred = defer.Deferred()
        self.running.append(((function, *args), d))
        return d

    def finish(self) -> None:
        (function, *args), d = self.running.pop(0)
        d.callback(function(*args))


class PrerendererTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.authority = GitAuthority(Served(loading=True))
        self.run = HandRun()
        self.prerenderer = Prerenderer(self.authority, self.clock, run=self.run, min_names=0)
        self.result = self.swap(load(ALL_FILES), at_once=True)

    def swap(self, result: LoadResult, at_once: bool = False) -> LoadResult:
        self.prerenderer.swap(Served(result.zoneset), result, at_once=at_once)
        return result

    def table(self) -> Table | None:
        return self.authority.served.tables.get(wire_key(ORIGIN))

    def test_loaded_zones_are_built_at_once(self) -> None:
        self.assertIsNone(self.table())
        self.clock.advance(0)
        self.run.finish()
        table = self.table()
        assert table is not None
        self.assertIs(table.zone, self.result.zoneset.zones[ORIGIN])
        self.assertEqual(len([t for t in self.authority.served.tables.values() if t]), 5)

    def test_small_zones_get_no_table(self) -> None:
        smallest = min(len(zone.names) for zone in self.result.zoneset.zones.values())
        biggest = max(len(zone.names) for zone in self.result.zoneset.zones.values())
        self.assertLess(smallest, biggest)
        clock, run = task.Clock(), HandRun()
        authority = GitAuthority(Served(loading=True))
        prerenderer = Prerenderer(authority, clock, run=run, min_names=biggest)
        result = load(ALL_FILES)
        prerenderer.swap(Served(result.zoneset), result, at_once=True)
        clock.advance(0)
        run.finish()
        built = [table for table in authority.served.tables.values() if table is not None]
        self.assertEqual([len(table.zone.names) for table in built], [biggest])
        # The others stay answered the general way.
        self.assertEqual(len(authority.served.tables), len(result.zoneset.zones))

    def test_changed_zone_built_once_quiet(self) -> None:
        self.clock.advance(0)
        self.run.finish()
        changed = self.swap(load({**ALL_FILES, "table.example": CHANGED}, self.result.zoneset))
        self.assertIsNone(self.table())
        self.clock.advance(QUIET - 1)
        # Changed again: the wait starts over.
        again = CHANGED.replace("192.0.2.3", "192.0.2.33")
        latest = self.swap(load({**ALL_FILES, "table.example": again}, changed.zoneset))
        self.clock.advance(QUIET - 1)
        self.assertEqual(self.run.running, [])
        self.clock.advance(1)
        self.run.finish()
        table = self.table()
        assert table is not None
        self.assertIs(table.zone, latest.zoneset.zones[ORIGIN])

    def test_table_of_a_zone_changed_meanwhile_is_not_served(self) -> None:
        self.clock.advance(0)
        changed = self.swap(load({**ALL_FILES, "table.example": CHANGED}, self.result.zoneset))
        self.run.finish()
        self.assertIsNone(self.table())
        self.assertIsNotNone(self.authority.served.tables[wire_key(dns.name.from_text("example."))])
        self.clock.advance(QUIET)
        self.run.finish()
        table = self.table()
        assert table is not None
        self.assertIs(table.zone, changed.zoneset.zones[ORIGIN])

    def expire(self) -> None:
        """table.example. passes its expire time (a secondary's zone), published with
        no zone changed: the rule holds whatever the caller says changed."""
        zones = self.authority.served.zones
        served = Served(zones, expired=frozenset({ORIGIN}))
        self.prerenderer.swap(served, LoadResult(zones, [], frozenset()))

    def test_expired_zone_gets_no_table(self) -> None:
        self.clock.advance(0)
        self.run.finish()
        self.assertIsNotNone(self.table())
        self.expire()
        self.assertIsNone(self.table())
        self.clock.advance(QUIET * 2)
        self.assertEqual(self.run.running, [])
        self.assertIsNone(self.table())

    def test_table_of_a_zone_expired_meanwhile_is_not_served(self) -> None:
        self.clock.advance(0)
        self.expire()
        self.run.finish()
        self.assertIsNone(self.table())
        self.assertIsNotNone(self.authority.served.tables[wire_key(dns.name.from_text("example."))])

    def test_table_no_longer_right_is_built_again(self) -> None:
        self.clock.advance(0)
        # A zone added above outmx's target while the build runs.
        elsewhere = "$ORIGIN elsewhere.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\n"
        self.swap(load({**ALL_FILES, "elsewhere.test": elsewhere}, self.result.zoneset))
        self.run.finish()
        self.assertIsNone(self.table())
        self.clock.advance(QUIET)
        self.run.finish()
        self.assertIsNotNone(self.table())
        self.assertEqual(self.run.running, [])

    def test_unchanged_zones_waiting_keep_their_turn(self) -> None:
        self.clock.advance(0)
        self.run.finish()
        self.swap(load({**ALL_FILES, "table.example": CHANGED}, self.result.zoneset))
        self.clock.advance(QUIET - 1)
        # Another zone changes: table.example's wait goes on.
        org = FILES["example.org"].replace("198.51.100.1", "198.51.100.2")
        current = self.authority.served.zones
        self.swap(load({**ALL_FILES, "table.example": CHANGED, "example.org": org}, current))
        self.clock.advance(1)
        self.run.finish()
        self.assertIsNotNone(self.table())
        self.assertEqual(self.run.running, [])

    def test_stop_cancels_what_waits(self) -> None:
        self.prerenderer.stop()
        self.clock.advance(QUIET)
        self.assertEqual(self.run.running, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_served_as_built(self) -> None:
        self.clock.advance(0)
        self.run.finish()
        served = self.authority.served
        plain = dataclasses.replace(served, tables={})
        for owner in TABLE_OWNERS:
            wire = dns.message.make_query(owner, "A", use_edns=0).to_wire()
            reply = respond(served, wire, tcp=True, now=NOW)
            general = respond_general(plain, wire, tcp=True, now=NOW)
            assert reply is not None and general is not None
            if owner != "two.table.example.":
                self.assertEqual(reply.wire, general.wire, owner)
