"""Before the first load is in: every request is answered SERVFAIL, none is lost or fatal."""

from __future__ import annotations

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.tsig
import dns.update
from twisted.internet import task
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from gitdns.gitrepo import Remote, Snapshot
from gitdns.gitsync import Loaded
from gitdns.primary import Primary, PrimaryConfig, canonical_order
from gitdns.respond import Served, respond
from gitdns.test.zonedata import EXAMPLE
from gitdns.zones import SourceFile, load_zoneset

KEY = dns.tsig.Key("admin._update.", "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")
PEER = ("127.0.0.1", 5353)


def query(name: str = "www.example.", rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype)


def notify() -> dns.message.Message:
    message = dns.message.make_query("example.", "SOA")
    message.set_opcode(dns.opcode.NOTIFY)
    message.use_tsig({KEY.name: KEY}, KEY.name)
    return message


def update() -> dns.message.Message:
    message = dns.update.UpdateMessage("example.", keyring={KEY.name: KEY}, keyname=KEY.name)
    message.add("new", 300, "A", "192.0.2.9")
    return message


class RespondWhileLoadingTests(SynchronousTestCase):
    def answer(self, message: dns.message.Message) -> dns.message.Message:
        reply = respond(Served(loading=True), message.to_wire(), tcp=False, now=0)
        assert reply is not None
        self.assertIsNone(reply.event)
        self.assertFalse(reply.origins)  # never cached
        return dns.message.from_wire(reply.wire, ignore_trailing=True, keyring=False)

    def test_query_servfail_with_its_question(self) -> None:
        sent = query()
        answer = self.answer(sent)
        self.assertEqual(answer.rcode(), dns.rcode.SERVFAIL)
        self.assertEqual(answer.id, sent.id)
        self.assertEqual(answer.question, sent.question)

    def test_notify_and_update_servfail(self) -> None:
        # Not REFUSED nor NOTAUTH (the keys are not known yet): their senders retry.
        for message in (notify(), update()):
            answer = self.answer(message)
            self.assertEqual(answer.rcode(), dns.rcode.SERVFAIL)
            self.assertEqual(answer.opcode(), message.opcode())

    def test_loaded_answers(self) -> None:
        self.assertEqual(
            respond(Served(), query().to_wire(), tcp=False, now=0).wire[3] & 0xF,  # type: ignore[union-attr]
            dns.rcode.REFUSED,
        )


class PrimaryLoadingTests(SynchronousTestCase):
    def setUp(self) -> None:
        remote = Remote.parse(self.mktemp())
        self.primary = Primary(
            PrimaryConfig(remote, listen=[], data_dir=self.mktemp()), clock=task.Clock()
        )
        self.primary.git.cache = None  # the cache's threads are not under test here

    def ask(self, message: dns.message.Message) -> int:
        reply = self.primary.handle(message.to_wire(), False, PEER)
        assert reply is not None and not hasattr(reply, "response")
        return dns.message.from_wire(reply.wire, keyring=False).rcode()  # type: ignore[union-attr]

    def test_servfail_until_loaded_then_answers(self) -> None:
        with capturedLogs() as events:
            for _ in range(3):
                self.assertEqual(self.ask(query()), dns.rcode.SERVFAIL)
            self.assertEqual(self.ask(notify()), dns.rcode.SERVFAIL)
            self.assertEqual(self.ask(update()), dns.rcode.SERVFAIL)
        told = [event for event in events if "until the zones are loaded" in event["log_format"]]
        self.assertEqual(len(told), 1)
        files = [SourceFile("example", "1" * 40, EXAMPLE.encode())]
        self.primary.git._install(Loaded(Snapshot("2" * 40, files), load_zoneset(files), {}))
        self.assertEqual(self.ask(query("mail.example.")), dns.rcode.NOERROR)
        self.assertEqual(self.ask(query("www.example.org.")), dns.rcode.REFUSED)


class CanonicalOrderTests(SynchronousTestCase):
    def test_same_order_as_dnspython(self) -> None:
        texts = ["b.example.", "A.example.", "example.", "a.b.example.", "z.", "Zz.a.", "a-.a."]
        names = [dns.name.from_text(text) for text in texts]
        self.assertEqual(sorted(names, key=canonical_order), sorted(names))
