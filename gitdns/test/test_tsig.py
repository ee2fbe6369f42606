"""TSIG on requests and responses (RFC 8945), and zone transfers (RFC 5936) through respond."""

from __future__ import annotations

import base64
import time

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.renderer
import dns.rrset
import dns.tsig
from twisted.python.monkey import MonkeyPatcher
from twisted.trial.unittest import SynchronousTestCase

from gitdns import tsig
from gitdns.keys import Operation
from gitdns.respond import Served, respond
from gitdns.test.zonedata import EXAMPLE, zoneset
from gitdns.tsig import Signature

KEYNAME = dns.name.from_text("ops._transfer.example.")
SECRET = base64.b64decode("kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")
KEY = dns.tsig.Key(KEYNAME, SECRET, dns.tsig.HMAC_SHA256)
OTHER = dns.name.from_text("other._transfer.example.org.")
OTHER_KEY = dns.tsig.Key(OTHER, SECRET, dns.tsig.HMAC_SHA256)


def transfer_rule(keyname: dns.name.Name, operation: Operation, zone: dns.name.Name) -> bool:
    """The key grants transfer of its own zone only (enough for these tests)."""
    return keyname.parent().parent() == zone


def served(open_axfr: bool = False) -> Served:
    return Served(zoneset(), {KEYNAME: KEY, OTHER: OTHER_KEY}, transfer_rule, open_axfr=open_axfr)


def signed(qname: str, qtype: str, key: dns.tsig.Key = KEY) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype)
    query.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
    return query


def with_mac(query: dns.message.Message, mac: bytes) -> bytes:
    """query's wire with a TSIG record carrying mac, as a forger would write it."""
    renderer = dns.renderer.Renderer(query.id, query.flags, 65535)
    question = query.question[0]
    renderer.add_question(question.name, question.rdtype, question.rdclass)
    renderer.write_header()
    rdata = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        dns.tsig.HMAC_SHA256,
        int(time.time()),
        300,
        mac,
        query.id,
        0,
        b"",
    )
    renderer.add_rrset(dns.renderer.ADDITIONAL, dns.rrset.from_rdata(KEYNAME, 0, rdata))
    renderer.write_header()
    return renderer.get_wire()


class TsigTests(SynchronousTestCase):
    def ask(self, wire: bytes, tcp: bool = False) -> bytes:
        reply = respond(served(), wire, tcp=tcp, now=int(time.time()))
        self.assertIsNotNone(reply)
        return reply

    def test_signed_query_gets_signed_answer(self) -> None:
        query = signed("ns1.example.", "A")
        reply = self.ask(query.to_wire())
        response = dns.message.from_wire(reply.wire, keyring={KEYNAME: KEY}, request_mac=query.mac)
        self.assertTrue(response.had_tsig)
        self.assertEqual(response.answer[0][0].address, "192.0.2.53")
        self.assertEqual(reply.origins, frozenset(), "signed answers must not be cached")

    def unsigned_error(self, wire: bytes) -> tuple[int, int]:
        response = dns.message.from_wire(self.ask(wire).wire, keyring=False)
        self.assertEqual(response.tsig[0].mac, b"")
        return response.rcode(), response.tsig[0].error

    def test_unknown_key_is_badkey_unsigned(self) -> None:
        stranger = dns.tsig.Key("stranger._update.example.", SECRET, dns.tsig.HMAC_SHA256)
        wire = signed("ns1.example.", "A", stranger).to_wire()
        self.assertEqual(self.unsigned_error(wire), (dns.rcode.NOTAUTH, dns.rcode.BADKEY))

    def test_wrong_algorithm_is_badkey(self) -> None:
        wrong = dns.tsig.Key(KEYNAME, SECRET, dns.tsig.HMAC_SHA512)
        wire = signed("ns1.example.", "A", wrong).to_wire()
        self.assertEqual(self.unsigned_error(wire), (dns.rcode.NOTAUTH, dns.rcode.BADKEY))

    def test_wrong_secret_is_badsig_unsigned(self) -> None:
        forged = dns.tsig.Key(KEYNAME, b"\x00" * 32, dns.tsig.HMAC_SHA256)
        wire = signed("ns1.example.", "A", forged).to_wire()
        self.assertEqual(self.unsigned_error(wire), (dns.rcode.NOTAUTH, dns.rcode.BADSIG))

    def test_old_request_is_badtime_signed_with_our_time(self) -> None:
        now = time.time()

        class Past:
            @staticmethod
            def time() -> float:
                return now - 3600

        query = signed("ns1.example.", "A")
        wire = MonkeyPatcher(
            (dns.renderer, "time", Past), (dns.message, "time", Past)
        ).runWithPatches(query.to_wire)
        reply = self.ask(wire)
        response = dns.message.from_wire(reply.wire, keyring=False)
        self.assertEqual(response.rcode(), dns.rcode.NOTAUTH)
        self.assertEqual(response.tsig[0].error, dns.rcode.BADTIME)
        self.assertNotEqual(response.tsig[0].mac, b"")
        server_time = int.from_bytes(response.tsig[0].other, "big")
        self.assertLess(abs(server_time - now), 5)

    def test_truncated_mac(self) -> None:
        query = dns.message.make_query("ns1.example.", "A")
        below_minimum = dns.message.from_wire(self.ask(with_mac(query, b"\x01" * 15)).wire)
        self.assertEqual(below_minimum.rcode(), dns.rcode.FORMERR)
        truncated = dns.message.from_wire(
            self.ask(with_mac(query, b"\x01" * 16)).wire, keyring=False
        )
        self.assertEqual(truncated.tsig[0].error, dns.rcode.BADTRUNC)

    def test_tsig_not_last_is_formerr(self) -> None:
        query = signed("ns1.example.", "A")
        wire = bytearray(query.to_wire())
        # One more (empty-named A) record after the TSIG record.
        wire[10:12] = (2).to_bytes(2, "big")
        wire += b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\xc0\x00\x02\x01"
        response = dns.message.from_wire(self.ask(bytes(wire)).wire)
        self.assertEqual(response.rcode(), dns.rcode.FORMERR)


class SignedTests(SynchronousTestCase):
    """tsig.signed() writes what dns.renderer writes, but for the key name's compression."""

    def both(self, key: dns.tsig.Key, signature: Signature, now: int) -> list[bytes]:
        """The response to signature's request, signed by signed() and by add_signature()
        (whose dnspython signer reads time.time())."""
        made = []
        for sign in ("ours", "dnspython"):
            renderer = dns.renderer.Renderer(signature.original_id, 0x8000, 65535)
            renderer.add_question(dns.name.from_text("Example."), dns.rdatatype.SOA)
            renderer.write_header()
            if sign == "ours":
                made.append(tsig.signed(renderer.get_wire(), signature, now))
                continue
            patcher = MonkeyPatcher((time, "time", lambda: float(now)))
            patcher.runWithPatches(tsig.add_signature, renderer, signature, now)
            made.append(renderer.get_wire())
        return made

    def test_same_record_and_mac_as_dnspython(self) -> None:
        now = int(time.time())
        for algorithm in (
            dns.tsig.HMAC_SHA256,
            dns.tsig.HMAC_SHA1,
            dns.tsig.HMAC_MD5,
            dns.tsig.HMAC_SHA512,
        ):
            key = dns.tsig.Key(KEYNAME, SECRET, algorithm)
            for error, request_mac in ((0, b"m" * 32), (dns.rcode.BADTIME, b"m" * 16), (0, b"")):
                # The request's key name in another case: echoed as sent, digested lowercase.
                signature = Signature(
                    dns.name.from_text("OPS._transfer.example."),
                    algorithm,
                    key,
                    request_mac,
                    4321,
                    error=error,
                )
                ours, theirs = self.both(key, signature, now)
                # dnspython verifies a response only when its TSIG error is 0; the
                # MACs are compared in all cases.
                keyring = {KEYNAME: key} if not error else False
                parsed = [
                    dns.message.from_wire(w, keyring=keyring, request_mac=request_mac)
                    for w in (ours, theirs)
                ]
                self.assertEqual(parsed[0].tsig[0], parsed[1].tsig[0])
                self.assertEqual(parsed[0].tsig.name.to_text(), "OPS._transfer.example.")
                self.assertEqual(parsed[0].to_wire(), parsed[1].to_wire())
                self.assertEqual(parsed[0].tsig[0].error, error)

    def test_unverified_request_is_not_signed(self) -> None:
        signature = Signature(KEYNAME, dns.tsig.HMAC_SHA256, None, b"", 1, dns.rcode.BADSIG)
        self.assertRaises(ValueError, tsig.signed, b"\x00" * 12, signature, 0)


def receive_transfer(query: dns.message.Message, messages: list[bytes]) -> list[str]:
    """Parse a transfer as a secondary does, TSIG checked message by message."""
    lines, ctx = [], None
    for wire in messages:
        message = dns.message.from_wire(
            wire,
            keyring={KEYNAME: KEY} if query.had_tsig else None,
            request_mac=query.mac if query.had_tsig else b"",
            xfr=True,
            tsig_ctx=ctx,
            multi=True,
        )
        ctx = message.tsig_ctx
        lines += [line for rrset in message.answer for line in rrset.to_text().splitlines()]
    return lines


class TransferTests(SynchronousTestCase):
    def transfer(self, query: dns.message.Message, tcp: bool = True, **kw: bool):
        return respond(served(**kw), query.to_wire(), tcp=tcp, now=int(time.time()))

    def test_udp_is_refused(self) -> None:
        query = signed("example.", "AXFR")
        reply = self.transfer(query, tcp=False)
        response = dns.message.from_wire(reply.wire, keyring={KEYNAME: KEY}, request_mac=query.mac)
        self.assertEqual(response.rcode(), dns.rcode.REFUSED)

    def test_no_key_is_notauth(self) -> None:
        reply = self.transfer(dns.message.make_query("example.", "AXFR"))
        self.assertEqual(dns.message.from_wire(reply.wire).rcode(), dns.rcode.NOTAUTH)

    def test_key_without_access_is_notauth(self) -> None:
        query = signed("example.", "AXFR", OTHER_KEY)
        reply = self.transfer(query)
        response = dns.message.from_wire(
            reply.wire, keyring={OTHER: OTHER_KEY}, request_mac=query.mac
        )
        self.assertEqual(response.rcode(), dns.rcode.NOTAUTH)

    def test_signed_axfr_streams_the_zone_soa_first_and_last(self) -> None:
        query = signed("example.", "AXFR")
        reply = self.transfer(query)
        lines = receive_transfer(query, list(reply.transfer.messages))
        self.assertIn(" SOA ", lines[0])
        self.assertEqual(lines[0], lines[-1])
        zone = zoneset().zones[dns.name.from_text("example.")]
        expected = {line for r in zone.rrsets() for line in r.to_text().splitlines()}
        self.assertEqual(set(lines), expected)
        self.assertEqual(len(lines), len(expected) + 1)

    def test_open_axfr_needs_no_key(self) -> None:
        query = dns.message.make_query("example.", "AXFR")
        reply = self.transfer(query, open_axfr=True)
        self.assertGreater(len(receive_transfer(query, list(reply.transfer.messages))), 2)

    def test_big_zone_spans_messages_each_signed(self) -> None:
        records = "".join(f'h{i} 300 IN TXT "{"x" * 100} {i}"\n' for i in range(3000))
        zones = zoneset(example=EXAMPLE + records)
        query = signed("example.", "AXFR")
        reply = respond(
            Served(zones, {KEYNAME: KEY}, transfer_rule),
            query.to_wire(),
            tcp=True,
            now=int(time.time()),
        )
        messages = list(reply.transfer.messages)
        self.assertGreater(len(messages), 4)
        for wire in messages:
            self.assertTrue(dns.message.from_wire(wire, keyring=False).had_tsig)
        zone = zones.zones[dns.name.from_text("example.")]
        records = sum(len(rrset) for rrset in zone.rrsets())
        self.assertEqual(len(receive_transfer(query, messages)), records + 1)

    def test_not_our_zone_is_notauth(self) -> None:
        reply = self.transfer(dns.message.make_query("www.example.", "AXFR"), open_axfr=True)
        self.assertEqual(dns.message.from_wire(reply.wire).rcode(), dns.rcode.NOTAUTH)
