"""The secondary's refresh state machine and inbound transfers, with plain values."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
from twisted.trial import unittest

from gitdns import refresh
from gitdns.refresh import (
    AXFR,
    IXFR,
    Copy,
    Drop,
    Expire,
    Incoming,
    Notified,
    QuerySoa,
    SoaAnswered,
    SoaFailed,
    Timer,
    Timers,
    Transfer,
    TransferDone,
    TransferFailed,
    Unexpire,
    Wake,
    ZoneGone,
    handle,
    start,
    transfer_query,
)
from gitdns.zones import Zone, parse_zone

ZONE = dns.name.from_text("mirage.")
TIMERS = Timers(refresh=100, retry=10, expire=1000)


def copy(serial: int = 1, contact: float = 0.0) -> Copy:
    return Copy(serial, TIMERS, contact)


def wake(actions: list) -> float | None:
    wakes = [a for a in actions if isinstance(a, Wake)]
    assert len(wakes) == 1 and actions[-1] is wakes[0], actions
    return wakes[0].at


class RefreshTests(unittest.TestCase):
    def test_start_without_copy_queries_soa(self) -> None:
        state, actions = start(ZONE, 50.0)
        self.assertEqual(actions, [QuerySoa(), Wake(None)])
        self.assertEqual(state.busy, "SOA")
        self.assertFalse(state.expired)

    def test_start_with_fresh_copy_serves_and_queries(self) -> None:
        state, actions = start(ZONE, 50.0, copy(contact=0.0))
        self.assertEqual(actions, [QuerySoa(), Wake(1000.0)])  # wake at expiry
        self.assertFalse(state.expired)

    def test_start_with_copy_past_expire_expires_at_once(self) -> None:
        state, actions = start(ZONE, 1000.0, copy(contact=0.0))
        self.assertEqual(actions, [Expire(), QuerySoa(), Wake(None)])
        self.assertTrue(state.expired)

    def test_first_soa_answer_without_copy_asks_axfr(self) -> None:
        state, _ = start(ZONE, 0.0)
        state, actions = handle(state, SoaAnswered(7), 1.0)
        self.assertEqual(actions, [Transfer(AXFR, None), Wake(None)])
        self.assertEqual(state.busy, AXFR)

    def test_newer_serial_asks_ixfr_from_ours(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, actions = handle(state, SoaAnswered(6), 1.0)
        self.assertEqual(actions[0], Transfer(IXFR, 5))
        self.assertEqual(state.busy, IXFR)

    def test_serial_wraps_around(self) -> None:
        state, _ = start(ZONE, 0.0, copy(2**32 - 1))
        _, actions = handle(state, SoaAnswered(3), 1.0)
        self.assertEqual(actions[0], Transfer(IXFR, 2**32 - 1))

    def test_same_serial_is_contact_and_refresh_later(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5, contact=0.0))
        state, actions = handle(state, SoaAnswered(5), 30.0)
        self.assertEqual(actions, [Wake(130.0)])
        self.assertEqual(state.copy, copy(5, contact=30.0))
        self.assertIsNone(state.busy)

    def test_older_serial_keeps_ours(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, actions = handle(state, SoaAnswered(4), 30.0)
        self.assertEqual(actions, [Wake(130.0)])
        self.assertEqual(state.copy.serial, 5)

    def test_transfer_done_serves_new_copy(self) -> None:
        state, _ = start(ZONE, 0.0)
        state, _ = handle(state, SoaAnswered(7), 1.0)
        new = Copy(7, Timers(60, 5, 500), contact=2.0)
        state, actions = handle(state, TransferDone(new), 2.0)
        self.assertEqual(actions, [Wake(62.0)])
        self.assertEqual(state.copy, new)
        self.assertIsNone(state.busy)

    def test_failed_ixfr_falls_back_to_axfr(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(6), 1.0)
        state, actions = handle(state, TransferFailed("bad"), 2.0)
        self.assertEqual(actions[0], Transfer(AXFR, None))
        self.assertEqual(state.busy, AXFR)

    def test_failed_axfr_retries_after_soa_retry(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(6), 1.0)
        state, _ = handle(state, TransferFailed(), 2.0)
        state, actions = handle(state, TransferFailed(), 3.0)
        self.assertEqual(actions, [Wake(13.0)])
        self.assertIsNone(state.busy)
        self.assertEqual(state.copy.serial, 5)  # still served

    def test_soa_failure_retries_after_retry_and_keeps_serving(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, actions = handle(state, SoaFailed("timeout"), 5.0)
        self.assertEqual(actions, [Wake(15.0)])
        self.assertFalse(state.expired)
        state, actions = handle(state, Timer(), 15.0)
        self.assertEqual(actions, [QuerySoa(), Wake(1000.0)])

    def test_without_copy_retries_back_off(self) -> None:
        state, _ = start(ZONE, 0.0)
        delays = []
        now = 0.0
        for _ in range(12):
            state, actions = handle(state, SoaFailed(), now)
            at = wake(actions)
            assert at is not None
            delays.append(at - now)
            now = at
            state, actions = handle(state, Timer(), now)
            self.assertEqual(actions[0], QuerySoa())
        self.assertEqual(delays[:4], [2.0, 4.0, 8.0, 16.0])
        self.assertEqual(delays[-1], refresh.LONGEST_RETRY)

    def test_timer_before_due_does_nothing(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(5), 1.0)
        again, actions = handle(state, Timer(), 50.0)
        self.assertEqual(actions, [Wake(101.0)])
        self.assertEqual(again, state)

    def test_refresh_timer_queries_soa(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(5), 1.0)
        state, actions = handle(state, Timer(), 101.0)
        self.assertEqual(actions, [QuerySoa(), Wake(1001.0)])

    def test_expire_after_expire_seconds_without_contact_then_recovery(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5, contact=0.0))
        state, _ = handle(state, SoaAnswered(5), 0.0)  # contact at 0: expires at 1000
        now = 100.0
        expired_at = None
        while now < 2000 and expired_at is None:
            state, actions = handle(state, Timer(), now)
            if Expire() in actions:
                expired_at = now
                break
            self.assertEqual(actions[0], QuerySoa())
            state, actions = handle(state, SoaFailed(), now)
            if Expire() in actions:
                expired_at = now
                break
            now = wake(actions)
        self.assertEqual(expired_at, 1000.0)
        self.assertTrue(state.expired)
        # Expired: still asking the primary every retry, no second Expire.
        state, actions = handle(state, SoaFailed(), 1000.0) if state.busy else (state, [])
        state, actions = handle(state, Timer(), 1010.0)
        self.assertEqual(actions, [QuerySoa(), Wake(None)])
        state, actions = handle(state, SoaAnswered(5), 1011.0)
        self.assertEqual(actions, [Unexpire(), Wake(1111.0)])
        self.assertFalse(state.expired)
        self.assertEqual(state.copy.contact, 1011.0)

    def test_expiry_while_a_query_is_pending(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5, contact=0.0))
        state, actions = handle(state, Timer(), 1000.0)
        self.assertEqual(actions, [Expire(), Wake(None)])
        self.assertTrue(state.expired)

    def test_recovery_by_transfer(self) -> None:
        state, _ = start(ZONE, 2000.0, copy(5, contact=0.0))
        self.assertTrue(state.expired)
        state, _ = handle(state, SoaAnswered(9), 2001.0)
        state, actions = handle(state, TransferDone(copy(9, contact=2002.0)), 2002.0)
        self.assertEqual(actions, [Unexpire(), Wake(2102.0)])

    def test_notify_queries_at_once(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(5), 1.0)
        state, actions = handle(state, Notified(6), 2.0)
        self.assertEqual(actions, [QuerySoa(), Wake(1001.0)])

    def test_notify_while_busy_checks_again_when_done(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, actions = handle(state, Notified(), 0.5)
        self.assertEqual(actions, [Wake(1000.0)])  # no second query in flight
        state, actions = handle(state, SoaAnswered(5), 1.0)
        self.assertEqual(actions, [QuerySoa(), Wake(1001.0)])
        self.assertFalse(state.again)

    def test_notify_during_transfer_checks_again_after(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(6), 1.0)
        state, _ = handle(state, Notified(), 1.5)
        state, actions = handle(state, TransferDone(copy(6, 2.0)), 2.0)
        self.assertEqual(actions, [QuerySoa(), Wake(1002.0)])

    def test_notify_during_failing_query_retries_at_once(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, Notified(), 0.5)
        state, actions = handle(state, SoaFailed(), 1.0)
        self.assertEqual(actions, [QuerySoa(), Wake(1000.0)])

    def test_zone_gone_drops_configured_zone_and_asks_later(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, actions = handle(state, ZoneGone(), 1.0)
        self.assertEqual(actions, [Drop(forget=False), Wake(3.0)])
        self.assertIsNone(state.copy)
        state, actions = handle(state, Timer(), 3.0)
        self.assertEqual(actions, [QuerySoa(), Wake(None)])

    def test_zone_gone_forgets_learned_zone(self) -> None:
        state, _ = start(ZONE, 0.0, configured=False)
        state, actions = handle(state, ZoneGone(), 1.0)
        self.assertEqual(actions, [Drop(forget=True), Wake(None)])
        self.assertEqual(handle(state, Notified(), 2.0), (state, []))

    def test_zone_gone_clears_expiry(self) -> None:
        state, _ = start(ZONE, 5000.0, copy(5, contact=0.0))
        state, _ = handle(state, ZoneGone(), 5001.0)
        self.assertFalse(state.expired)

    def test_late_answers_are_ignored(self) -> None:
        state, _ = start(ZONE, 0.0, copy(5))
        state, _ = handle(state, SoaAnswered(5), 1.0)
        for event in (
            SoaAnswered(9),
            SoaFailed(),
            ZoneGone(),
            TransferDone(copy(9)),
            TransferFailed(),
        ):
            self.assertEqual(handle(state, event, 2.0), (state, []))

    def test_zero_refresh_does_not_loop(self) -> None:
        state, _ = start(ZONE, 0.0, Copy(5, Timers(0, 0, 100), 0.0))
        _, actions = handle(state, SoaAnswered(5), 1.0)
        self.assertEqual(wake(actions), 1.0 + refresh.SHORTEST_INTERVAL)


MIRAGE = """\
$ORIGIN mirage.
$TTL 3600
@ SOA ns1 hostmaster 1 86400 7200 1048576 3600
@ NS ns1
ns1 A 127.0.0.1
www A 1.1.1.1
old TXT "gone soon"
"""
KEY = dns.tsig.Key("t._transfer.mirage.", "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20=")
OTHER_KEY = dns.tsig.Key("t._transfer.mirage.", "A" * 43 + "=")


def zone(text: str = MIRAGE) -> Zone:
    return parse_zone(ZONE, text, "mirage")


def soa(serial: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(
        ZONE, 3600, "IN", "SOA", f"ns1.mirage. hostmaster.mirage. {serial} 86400 7200 1048576 3600"
    )


def rr(name: str, rdtype: str, *data: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, 3600, "IN", rdtype, *data)


def answer(
    query: dns.message.Message,
    groups: list[list[dns.rrset.RRset]],
    key: dns.tsig.Key | None = KEY,
    sign: list[bool] | None = None,
) -> list[bytes]:
    """The primary's side: each group one message, signed as RFC 8945 5.3.1 says."""
    request = dns.message.from_wire(query.to_wire(), keyring=False)
    wires = []
    ctx = None
    for index, group in enumerate(groups):
        response = dns.message.make_response(request)
        if index:
            response.question = []
        response.answer = group
        if key is not None and (sign is None or sign[index]):
            response.use_tsig({key.name: key}, key.name, tsig_error=0)
            response.request_mac = query.mac
            wire = response.to_wire(multi=True, tsig_ctx=ctx)
            ctx = response.tsig_ctx
        else:
            wire = response.to_wire()
        wires.append(wire)
    return wires


def run(incoming: Incoming, wires: list[bytes]) -> bool:
    return [incoming.receive(wire) for wire in wires][-1]


class IncomingTests(unittest.TestCase):
    def test_axfr_builds_zone(self) -> None:
        query = transfer_query(ZONE, AXFR, None, KEY)
        incoming = Incoming(query, None)
        wires = answer(
            query,
            [
                [soa(3), rr("mirage.", "NS", "ns1.mirage.")],
                [rr("ns1.mirage.", "A", "10.0.0.1")],
                [soa(3)],
            ],
        )
        self.assertTrue(run(incoming, wires))
        new = incoming.build()
        assert new is not None
        self.assertEqual(new.serial, 3)
        self.assertEqual(new.nodes[dns.name.from_text("ns1.mirage.")][1][0].address, "10.0.0.1")
        self.assertEqual((incoming.messages, incoming.records), (3, 4))

    def test_ixfr_applies_difference_and_shares_the_rest(self) -> None:
        base = zone()
        query = transfer_query(ZONE, IXFR, base.serial, KEY)
        incoming = Incoming(query, base)
        wires = answer(
            query,
            [
                [soa(2)],
                [
                    soa(1),
                    rr("old.mirage.", "TXT", '"gone soon"'),
                    rr("www.mirage.", "A", "1.1.1.1"),
                ],
                [soa(2), rr("www.mirage.", "A", "2.2.2.2"), rr("new.mirage.", "A", "3.3.3.3")],
                [soa(2)],
            ],
        )
        self.assertTrue(run(incoming, wires))
        self.assertTrue(incoming.incremental)
        new = incoming.build()
        assert new is not None
        names = {name.to_text() for name in new.nodes}
        self.assertEqual(names, {"mirage.", "ns1.mirage.", "www.mirage.", "new.mirage."})
        www = new.nodes[dns.name.from_text("www.mirage.")][dns.rdatatype.A]
        self.assertEqual([r.address for r in www], ["2.2.2.2"])
        ns1 = dns.name.from_text("ns1.mirage.")
        self.assertIs(new.nodes[ns1][dns.rdatatype.A], base.nodes[ns1][dns.rdatatype.A])
        self.assertEqual(base.serial, 1)  # the base is never modified
        self.assertIn(dns.name.from_text("old.mirage."), base.nodes)

    def test_ixfr_answered_axfr_style(self) -> None:
        base = zone()
        query = transfer_query(ZONE, IXFR, 1, KEY)
        incoming = Incoming(query, base)
        wires = answer(query, [[soa(4), rr("mirage.", "NS", "ns1.mirage."), soa(4)]])
        self.assertTrue(run(incoming, wires))
        self.assertFalse(incoming.incremental)
        new = incoming.build()
        assert new is not None
        self.assertEqual(len(new.nodes), 1)
        self.assertEqual(new.serial, 4)

    def test_ixfr_current_changes_nothing(self) -> None:
        query = transfer_query(ZONE, IXFR, 1, KEY)
        incoming = Incoming(query, zone())
        self.assertTrue(run(incoming, answer(query, [[soa(1)]])))
        self.assertIsNone(incoming.build())

    def test_ixfr_deleting_what_we_do_not_hold_fails(self) -> None:
        query = transfer_query(ZONE, IXFR, 1, KEY)
        incoming = Incoming(query, zone())
        wires = answer(query, [[soa(2), soa(1), rr("www.mirage.", "A", "9.9.9.9"), soa(2), soa(2)]])
        self.assertRaises(dns.exception.DNSException, run, incoming, wires)
        self.assertIsNone(incoming.build())

    def test_bad_signature_fails(self) -> None:
        query = transfer_query(ZONE, AXFR, None, KEY)
        incoming = Incoming(query, None)
        wires = answer(query, [[soa(3), rr("mirage.", "NS", "ns1.mirage."), soa(3)]], OTHER_KEY)
        self.assertRaises(dns.tsig.BadSignature, run, incoming, wires)
        self.assertIsNone(incoming.build())

    def test_unsigned_last_message_commits_nothing(self) -> None:
        query = transfer_query(ZONE, AXFR, None, KEY)
        incoming = Incoming(query, None)
        wires = answer(
            query,
            [[soa(3), rr("mirage.", "NS", "ns1.mirage.")], [soa(3)]],
            sign=[True, False],
        )
        self.assertRaises(dns.exception.DNSException, run, incoming, wires)
        self.assertIsNone(incoming.build())

    def test_transfer_cut_short_changes_nothing(self) -> None:
        query = transfer_query(ZONE, AXFR, None, KEY)
        incoming = Incoming(query, None)
        wires = answer(query, [[soa(3), rr("mirage.", "NS", "ns1.mirage.")], [soa(3)]])
        self.assertFalse(incoming.receive(wires[0]))
        incoming.close()
        self.assertIsNone(incoming.build())

    def test_error_rcode_fails(self) -> None:
        query = transfer_query(ZONE, AXFR, None, None)
        incoming = Incoming(query, None)
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NOTAUTH)
        self.assertRaises(dns.xfr.TransferError, incoming.receive, response.to_wire())

    def test_zone_without_ns_is_refused(self) -> None:
        query = transfer_query(ZONE, AXFR, None, None)
        incoming = Incoming(query, None)
        wires = answer(query, [[soa(3), rr("www.mirage.", "A", "1.1.1.1"), soa(3)]], None)
        self.assertTrue(run(incoming, wires))
        self.assertRaises(ValueError, incoming.build)

    def test_ixfr_query_carries_our_serial(self) -> None:
        query = transfer_query(ZONE, IXFR, 42, None)
        self.assertEqual(query.question[0].rdtype, dns.rdatatype.IXFR)
        self.assertEqual(query.authority[0][0].serial, 42)
