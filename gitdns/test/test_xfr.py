"""IXFR from the journal (RFC 1995): differences, condensing, planning, the stream."""

from __future__ import annotations

import itertools

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.versioned
import dns.xfr
from twisted.trial.unittest import SynchronousTestCase

from gitdns.respond import Served, respond
from gitdns.test.zonedata import EXAMPLE, zoneset
from gitdns.xfr import condense, extend_journal, ixfr_plan, zone_delta

ORIGIN = dns.name.from_text("example.")
HOSTS = "".join(f"h{i} 300 IN A 10.0.{i // 256}.{i % 256}\n" for i in range(200))


def version(serial: int, extra: str = "") -> object:
    text = EXAMPLE.replace("2024010101", str(serial)) + HOSTS + extra
    return zoneset(example=text).zones[ORIGIN]


def lines(delta_records: tuple) -> set[str]:
    return {f"{name} {ttl} {rdata}" for name, ttl, rdata in delta_records}


class DeltaTests(SynchronousTestCase):
    def test_zone_delta_finds_changed_records_only(self) -> None:
        old = version(1, "x 300 IN A 192.0.2.1\ny 300 IN TXT old\n")
        new = version(2, "x 300 IN A 192.0.2.2\ny 600 IN TXT old\nz 300 IN A 192.0.2.3\n")
        step = zone_delta(old, new)
        self.assertEqual((step.old_serial, step.new_serial), (1, 2))
        self.assertEqual(lines(step.removed), {"x.example. 300 192.0.2.1", 'y.example. 300 "old"'})
        self.assertEqual(
            lines(step.added),
            {"x.example. 300 192.0.2.2", 'y.example. 600 "old"', "z.example. 300 192.0.2.3"},
        )

    def test_condense_cancels_out(self) -> None:
        one, two, three = version(1), version(2, "t 300 IN A 192.0.2.9\n"), version(3)
        condensed = condense([zone_delta(one, two), zone_delta(two, three)])
        self.assertEqual((condensed.old_serial, condensed.new_serial), (1, 3))
        self.assertEqual((condensed.removed, condensed.added), ((), ()))

    def test_plan(self) -> None:
        one, two, three = version(1), version(2, "t 300 IN A 192.0.2.9\n"), version(3)
        journal = (zone_delta(one, two), zone_delta(two, three))
        self.assertEqual(len(ixfr_plan(three, journal, 2)), 1)
        # From 1 the condensed form (no records) beats the two-step sequence.
        plan = ixfr_plan(three, journal, 1)
        self.assertEqual([(s.old_serial, s.new_serial) for s in plan], [(1, 3)])
        self.assertIsNone(ixfr_plan(three, journal, 7), "unknown serial: AXFR-style")

    def test_plan_falls_back_when_difference_is_not_smaller(self) -> None:
        old = version(1)
        new = zoneset(example=EXAMPLE.replace("2024010101", "2")).zones[ORIGIN]
        self.assertIsNone(ixfr_plan(new, (zone_delta(old, new),), 1))

    def test_difference_at_known_names(self) -> None:
        one, two = version(1), version(2, "t 300 IN A 192.0.2.9\n")
        touched = [dns.name.from_text("t.example."), ORIGIN]
        self.assertEqual(zone_delta(one, two, touched), zone_delta(one, two))
        self.assertEqual(zone_delta(one, two, [ORIGIN]).added, ())

    def test_journal_breaks_when_serial_did_not_increase(self) -> None:
        one, two = version(1), version(1, "t 300 IN A 192.0.2.9\n")
        zones = zoneset(example=EXAMPLE)
        journal = extend_journal({}, zones, {ORIGIN: zone_delta(version(0), one)})
        self.assertEqual(len(journal[ORIGIN]), 1)
        self.assertEqual(extend_journal(journal, zones, {ORIGIN: zone_delta(one, two)}), {})


class IxfrTests(SynchronousTestCase):
    def served(self, *versions: object) -> Served:
        journal = tuple(zone_delta(a, b) for a, b in itertools.pairwise(versions))
        zones = zoneset(example=EXAMPLE)
        current = versions[-1]
        zones = type(zones)({ORIGIN: current}, zones.sources)
        return Served(zones, open_axfr=True, journal={ORIGIN: journal})

    def ask(self, served: Served, serial: int, tcp: bool = True) -> list[bytes] | bytes:
        query = dns.message.make_query(ORIGIN, "IXFR")
        query.authority.append(
            dns.rrset.from_text(
                ORIGIN, 0, "IN", "SOA", f"ns1.example. hostmaster.example. {serial} 1 1 1 1"
            )
        )
        reply = respond(served, query.to_wire(), tcp=tcp, now=0)
        return list(reply.transfer.messages) if reply.transfer else reply.wire

    def test_incremental_answer_applies_on_a_secondarys_copy(self) -> None:
        one, two = version(1), version(2, "t 300 IN A 192.0.2.9\n")
        three = version(3, "t 300 IN A 192.0.2.9\nu 300 IN A 192.0.2.10\n")
        messages = self.ask(self.served(one, two, three), 1)
        copy = dns.versioned.Zone(ORIGIN, relativize=False)
        with copy.writer() as txn:
            for rrset in one.rrsets():
                txn.add(rrset)
        query = dns.message.make_query(ORIGIN, "IXFR")
        with dns.xfr.Inbound(copy, dns.rdatatype.IXFR, serial=1) as inbound:
            for wire in messages:
                message = dns.message.from_wire(wire, xfr=True, one_rr_per_rrset=True)
                message.id = query.id
                inbound.process_message(message)
        self.assertEqual(copy.get_soa().serial, 3)
        self.assertEqual(copy.find_rdataset("u.example.", "A")[0].address, "192.0.2.10")
        self.assertLess(sum(len(wire) for wire in messages), 600)

    def test_current_or_udp_gets_the_soa_alone(self) -> None:
        one, two = version(1), version(2, "t 300 IN A 192.0.2.9\n")
        served = self.served(one, two)
        for serial, tcp in ((2, True), (1, False)):
            response = dns.message.from_wire(self.ask(served, serial, tcp=tcp))
            self.assertEqual([r.rdtype for r in response.answer], [dns.rdatatype.SOA])
            self.assertEqual(response.answer[0][0].serial, 2)

    def test_unknown_serial_is_answered_axfr_style(self) -> None:
        one, two = version(1), version(2, "t 300 IN A 192.0.2.9\n")
        messages = self.ask(self.served(one, two), 99)
        answer = dns.message.from_wire(messages[0], xfr=True).answer
        self.assertGreater(sum(len(rrset) for rrset in answer), 200)

    def test_without_the_clients_soa_is_formerr(self) -> None:
        query = dns.message.make_query(ORIGIN, "IXFR")
        reply = respond(self.served(version(1)), query.to_wire(), tcp=True, now=0)
        self.assertEqual(dns.message.from_wire(reply.wire).rcode(), dns.rcode.FORMERR)
