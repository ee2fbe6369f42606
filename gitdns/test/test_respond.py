"""Requests as bytes to responses as bytes: parsing, EDNS, opcodes, truncation."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
from twisted.trial.unittest import SynchronousTestCase

from gitdns.respond import Served, respond
from gitdns.test.zonedata import EXAMPLE, zoneset
from gitdns.zones import ZoneSet

NOW = 1_700_000_000

BIG_TXT = "".join(f'big TXT "{"x" * 200} {i}"\n' for i in range(12))


def served(zones: ZoneSet | None = None) -> Served:
    return Served(zones or zoneset())


def ask(wire: bytes, *, tcp: bool = False, zones: ZoneSet | None = None) -> dns.message.Message:
    reply = respond(served(zones), wire, tcp=tcp, now=NOW)
    assert reply is not None
    return dns.message.from_wire(reply.wire)


class RespondTests(SynchronousTestCase):
    def test_answer_keeps_id_question_case_and_rd(self) -> None:
        query = dns.message.make_query("NS1.Example.", "A")
        response = ask(query.to_wire())
        self.assertEqual(response.id, query.id)
        self.assertEqual(str(response.question[0].name), "NS1.Example.")
        self.assertTrue(response.flags & dns.flags.AA)
        self.assertTrue(response.flags & dns.flags.RD)
        self.assertFalse(response.flags & dns.flags.RA)

    def test_no_edns_in_no_edns_out(self) -> None:
        response = ask(dns.message.make_query("ns1.example.", "A").to_wire())
        self.assertEqual(response.edns, -1)

    def test_edns_answered_with_our_payload(self) -> None:
        query = dns.message.make_query("ns1.example.", "A", use_edns=0, payload=4096)
        response = ask(query.to_wire())
        self.assertEqual((response.edns, response.payload), (0, 1232))

    def test_edns_version_above_zero_is_badvers(self) -> None:
        query = dns.message.make_query("ns1.example.", "A", use_edns=1)
        response = ask(query.to_wire())
        self.assertEqual(response.rcode(), dns.rcode.BADVERS)
        self.assertEqual(response.edns, 0)
        self.assertEqual(len(response.answer), 0)

    def test_responses_are_dropped(self) -> None:
        query = dns.message.make_query("ns1.example.", "A")
        query.flags |= dns.flags.QR
        self.assertIsNone(respond(served(), query.to_wire(), tcp=False, now=NOW))

    def test_short_garbage_is_dropped(self) -> None:
        self.assertIsNone(respond(served(), b"\x12\x34\x01", tcp=False, now=NOW))

    def test_unparsable_is_formerr_with_id(self) -> None:
        wire = dns.message.make_query("ns1.example.", "A").to_wire()[:-3]
        response = ask(wire)
        self.assertEqual(response.rcode(), dns.rcode.FORMERR)
        self.assertEqual(response.id, int.from_bytes(wire[:2], "big"))

    def test_compression_loop_is_formerr(self) -> None:
        header = b"\xab\xcd\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        response = ask(header + b"\xc0\x0c\x00\x01\x00\x01")
        self.assertEqual(response.rcode(), dns.rcode.FORMERR)

    def test_two_questions_is_formerr(self) -> None:
        query = dns.message.make_query("ns1.example.", "A")
        query.question.append(dns.message.make_query("mail.example.", "A").question[0])
        self.assertEqual(ask(query.to_wire()).rcode(), dns.rcode.FORMERR)

    def test_unknown_opcode_is_notimp(self) -> None:
        query = dns.message.make_query("ns1.example.", "A")
        query.set_opcode(dns.opcode.STATUS)
        self.assertEqual(ask(query.to_wire()).rcode(), dns.rcode.NOTIMP)

    def test_transfer_over_udp_refused(self) -> None:
        query = dns.message.make_query("example.", "AXFR")
        self.assertEqual(ask(query.to_wire()).rcode(), dns.rcode.REFUSED)

    def test_other_class_refused(self) -> None:
        query = dns.message.make_query("example.", "SOA", rdclass="CH")
        self.assertEqual(ask(query.to_wire()).rcode(), dns.rcode.REFUSED)

    def test_udp_truncation_keeps_whole_rrsets(self) -> None:
        zones = zoneset(example=EXAMPLE + BIG_TXT)
        for use_edns, limit in ((False, 512), (0, 1232)):
            query = dns.message.make_query("big.example.", "TXT", use_edns=use_edns, payload=4096)
            reply = respond(served(zones), query.to_wire(), tcp=False, now=NOW)
            self.assertLessEqual(len(reply.wire), limit)
            response = dns.message.from_wire(reply.wire)
            self.assertTrue(response.flags & dns.flags.TC)
            # The one TXT RRset does not fit whole, so none of it is sent.
            self.assertEqual(response.answer, [])

    def test_tcp_is_not_truncated(self) -> None:
        zones = zoneset(example=EXAMPLE + BIG_TXT)
        query = dns.message.make_query("big.example.", "TXT")
        response = ask(query.to_wire(), tcp=True, zones=zones)
        self.assertFalse(response.flags & dns.flags.TC)
        self.assertEqual(len(response.answer[0]), 12)

    def test_client_payload_below_512_means_512(self) -> None:
        query = dns.message.make_query("example.", "NS", use_edns=0, payload=100)
        reply = respond(served(), query.to_wire(), tcp=False, now=NOW)
        self.assertFalse(dns.message.from_wire(reply.wire).flags & dns.flags.TC)

    def test_dropped_additional_does_not_truncate(self) -> None:
        names = "".join(f"n{i}.example. 3600 IN NS ns{i}.example.\n" for i in range(20))
        addresses = "".join(
            f"ns{i}.example. 3600 IN AAAA 2001:db8::{i}\nns{i}.example. 3600 IN A 192.0.2.{i}\n"
            for i in range(20)
        )
        many = "".join(f"many 3600 IN MX {i} ns{i}.example.\n" for i in range(20))
        zones = zoneset(example=EXAMPLE + names + addresses + many)
        query = dns.message.make_query("many.example.", "MX")
        response = ask(query.to_wire(), zones=zones)
        self.assertFalse(response.flags & dns.flags.TC)
        self.assertEqual(len(response.answer[0]), 20)
        self.assertLess(sum(len(r) for r in response.additional), 40)

    def test_cacheable_answers_name_their_zone(self) -> None:
        reply = respond(
            served(), dns.message.make_query("ns1.example.", "A").to_wire(), tcp=False, now=NOW
        )
        self.assertEqual({str(o) for o in reply.origins}, {"example."})
        refused = respond(
            served(), dns.message.make_query("a.test.", "A").to_wire(), tcp=False, now=NOW
        )
        self.assertEqual(refused.origins, frozenset())
