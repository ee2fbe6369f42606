"""Whom a zone's NOTIFYs go to, and how they are retransmitted."""

from __future__ import annotations

import base64

import dns.message
import dns.name
import dns.opcode
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from gitdns.keys import Key, algorithm_from_text
from gitdns.notify import Notifier, Target, notify_message, notify_targets
from gitdns.test.zonedata import zoneset

SECRET = base64.b64decode("cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20=")
NAME = dns.name.from_text


def key(name: str) -> Key:
    return Key(NAME(name), algorithm_from_text("hmac-sha256"), SECRET)


ZONE_TEXT = """\
$ORIGIN example.
@ 300 SOA ns1 hostmaster 1 3600 600 86400 60
@ 300 NS ns1
@ 300 NS ns2
@ 300 NS ns.elsewhere.
ns1 300 A 192.0.2.1
ns2 300 A 192.0.2.2
ns2 300 AAAA 2001:db8::2
"""


class TargetTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.zone = zoneset(example=ZONE_TEXT).zones[NAME("example.")]

    def test_ns_addresses_but_not_the_mname(self) -> None:
        self.assertEqual(
            notify_targets(self.zone, []),
            [Target("192.0.2.2"), Target("2001:db8::2")],
        )

    def test_secondaries_named_by_keys_of_the_zone_or_above(self) -> None:
        here = key("192.0.2.1.198.51.100.7._transfer.example.")
        root = key("192.0.2.1.198.51.100.8._transfer.")
        elsewhere = key("192.0.2.1.198.51.100.9._transfer.example.org.")
        hidden = key("acme.192.0.2.1._transfer.example.")
        targets = notify_targets(self.zone, [here, root, elsewhere, hidden])
        keyed = {t.address: t.key for t in targets if t.key is not None}
        self.assertEqual(keyed, {"198.51.100.7": here, "198.51.100.8": root})

    def test_registered_and_keyed_win_over_unsigned(self) -> None:
        registered = key("acme._transfer.example.")
        same_address = key("192.0.2.1.192.0.2.2._transfer.example.")
        targets = notify_targets(self.zone, [same_address], {"203.0.113.5": registered})
        self.assertIn(Target("192.0.2.2", same_address), targets)
        self.assertIn(Target("203.0.113.5", registered), targets)
        self.assertNotIn(Target("192.0.2.2"), targets)

    def test_message_is_a_signed_notify_with_the_soa(self) -> None:
        signer = key("192.0.2.1.192.0.2.2._transfer.example.")
        wire = notify_message(self.zone, signer).to_wire()
        parsed = dns.message.from_wire(wire, keyring={signer.name: signer.tsig_key()})
        self.assertEqual(parsed.opcode(), dns.opcode.NOTIFY)
        self.assertEqual(parsed.answer[0].name, NAME("example."))
        self.assertTrue(parsed.had_tsig)


class NotifierTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.zone = zoneset(example=ZONE_TEXT).zones[NAME("example.")]
        self.clock = task.Clock()
        self.sent: list[tuple[float, str]] = []
        self.answer_after = 10**9

    def send(self, address: str, message: dns.message.Message) -> defer.Deferred:
        self.sent.append((self.clock.seconds(), address))
        if len(self.sent) > self.answer_after:
            return defer.succeed(dns.message.make_response(message))
        return defer.fail(OSError("no answer"))

    def test_retransmits_on_schedule_until_answered(self) -> None:
        self.answer_after = 3
        notifier = Notifier(self.clock, self.send, schedule=(1, 1, 4, 13))
        notifier.notify(self.zone, [Target("192.0.2.2")])
        self.clock.pump([0.5] * 60)
        self.assertEqual([when for when, _ in self.sent], [0, 1, 2, 6])

    def test_gives_up_after_the_schedule(self) -> None:
        notifier = Notifier(self.clock, self.send, schedule=(1, 2))
        notifier.notify(self.zone, [Target("192.0.2.2")])
        self.clock.pump([1] * 30)
        self.assertEqual(len(self.sent), 3)

    def test_newer_notify_replaces_retries(self) -> None:
        notifier = Notifier(self.clock, self.send, schedule=(10, 10))
        notifier.notify(self.zone, [Target("192.0.2.2")])
        self.clock.advance(5)
        notifier.notify(self.zone, [Target("192.0.2.2")])
        self.clock.pump([1] * 40)
        self.assertEqual([when for when, _ in self.sent], [0, 5, 15, 25])

    def test_stop_cancels_everything(self) -> None:
        notifier = Notifier(self.clock, self.send)
        notifier.notify(self.zone, [Target("192.0.2.2"), Target("2001:db8::2")])
        notifier.stop()
        self.clock.pump([10] * 10)
        self.assertEqual(len(self.sent), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])
