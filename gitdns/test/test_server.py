"""The listeners on real loopback sockets: cache, invalidation, TCP framing and limits."""

from __future__ import annotations

import socket
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
from twisted.internet import defer, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gitdns.authority import GitAuthority
from gitdns.metrics import Metrics
from gitdns.names import wire_key
from gitdns.prerendered import kept_tables
from gitdns.respond import Reply, Served, respond
from gitdns.server import (
    DNSStreamFactory,
    ListenerService,
    RequestDispatcher,
    ResponseCache,
    parse_listen,
)
from gitdns.test.test_prerendered import tables_for
from gitdns.test.zonedata import EXAMPLE, zoneset
from gitdns.zones import LoadResult


class Listening:
    """A ZoneSet behind real sockets on 127.0.0.1, as the primary wires it."""

    def __init__(
        self, max_connections: int = 150, idle_timeout: float = 10.0, prerendered: bool = False
    ) -> None:
        zones = zoneset()
        self.authority = GitAuthority(
            Served(zones, tables=tables_for(zones) if prerendered else {})
        )
        self.cache = ResponseCache()
        self.metrics = Metrics()
        self.calls = 0

        def handle(wire: bytes, tcp: bool, peer: tuple[str, int]):
            self.calls += 1
            return respond(self.authority.served, wire, tcp=tcp, now=int(time.time()))

        self.dispatcher = RequestDispatcher(handle, self.cache, self.metrics, self.authority)
        self.streams = DNSStreamFactory(self.dispatcher, idle_timeout, max_connections)
        self.listener = ListenerService("127.0.0.1", 0, self.dispatcher, self.streams)
        self.listener.privilegedStartService()
        self.listener.startService()
        self.port = self.listener.ports[0].getHost().port

    def ask(self, qname: str, qtype: str = "A", tcp: bool = False) -> defer.Deferred:
        query = dns.message.make_query(qname, qtype)
        send = dns.query.tcp if tcp else dns.query.udp
        return threads.deferToThread(send, query, "127.0.0.1", timeout=5, port=self.port)


class ResponseCacheTests(SynchronousTestCase):
    def test_full_cache_drops_its_oldest_quarter(self) -> None:
        cache = ResponseCache(limit=8)
        origin = dns.name.from_text("example.")
        reply = Reply(b"\x00\x00answer", frozenset({origin}))
        for number in range(8):
            cache.store(False, b"\x00\x00%d" % number, reply)
        cache.store(True, b"\x00\x00late", reply)
        self.assertEqual(list(cache.udp), [b"%d" % number for number in range(3, 8)])
        self.assertEqual(list(cache.tcp), [b"late"])
        cache.invalidate([origin])
        self.assertEqual((cache.udp, cache.tcp), ({}, {}))

    def test_eviction_forgets_dropped_keys(self) -> None:
        cache = ResponseCache(limit=4)
        origins = [dns.name.from_text(f"z{number}.") for number in range(40)]
        for number, origin in enumerate(origins):
            cache.store(False, b"\x00\x00%d" % number, Reply(b"\x00\x00", frozenset({origin})))
        self.assertLessEqual(len(cache.udp), 4)
        # Only the origins of answers still held are tracked: no growth with traffic.
        self.assertEqual(len(cache._keys), len(cache.udp))

    def test_prerendered_answers_are_admitted_only_while_there_is_room(self) -> None:
        cache = ResponseCache(limit=4)
        origin = dns.name.from_text("example.")
        reply = Reply(b"\x00\x00answer", frozenset({origin}))
        for number in range(3):
            cache.store(False, b"\x00\x00%d" % number, reply)
        cache.admit(False, b"table", b"\x00\x00prerendered", wire_key(origin))
        self.assertEqual(cache.udp[b"table"], b"prerendered")
        # Full: nothing is evicted for an answer that is cheap to make again.
        cache.admit(True, b"more", b"\x00\x00prerendered", wire_key(origin))
        self.assertEqual(len(cache.udp), 4)
        self.assertEqual(cache.tcp, {})
        cache.invalidate([origin])
        self.assertEqual(cache.udp, {})


class PrerenderedListeningTests(TestCase):
    """The listeners answer from the tables before the general path."""

    def setUp(self) -> None:
        self.served = Listening(prerendered=True)
        self.addCleanup(self.served.listener.stopService)

    @defer.inlineCallbacks
    def test_answered_from_the_table_then_from_the_cache(self):
        for tcp in (False, True):
            response = yield self.served.ask("mail.example.", tcp=tcp)
            self.assertEqual(response.answer[0][0].address, "192.0.2.25")
            again = yield self.served.ask("mail.example.", tcp=tcp)
            self.assertEqual(again.answer, response.answer)
        self.assertEqual(self.served.calls, 0)
        self.assertEqual(self.served.metrics.prerendered, {"udp": 1, "tcp": 1})
        self.assertEqual(self.served.metrics.cache_hits, {"udp": 1, "tcp": 1})

    @defer.inlineCallbacks
    def test_negative_answers_from_the_table(self):
        response = yield self.served.ask("nope.example.")
        self.assertEqual(response.rcode(), dns.rcode.NXDOMAIN)
        response = yield self.served.ask("mail.example.", "TXT")
        self.assertEqual((response.rcode(), response.answer), (dns.rcode.NOERROR, []))
        self.assertEqual(self.served.calls, 0)

    @defer.inlineCallbacks
    def test_what_the_tables_leave_goes_the_general_way(self):
        response = yield self.served.ask("example.", "ANY")
        self.assertTrue(response.answer)
        self.assertEqual(self.served.calls, 1)

    @defer.inlineCallbacks
    def test_changed_zone_is_not_answered_from_its_old_table(self):
        yield self.served.ask("mail.example.")
        new = zoneset(example=EXAMPLE.replace("192.0.2.25", "192.0.2.26"))
        changed = frozenset({dns.name.from_text("example.")})
        self.served.authority.on_change(
            lambda result, previous: self.served.cache.invalidate(result.changed)
        )
        served = self.served.authority.served
        tables = kept_tables(served.tables, new, changed)
        self.served.authority.swap(Served(new, tables=tables), LoadResult(new, [], changed))
        response = yield self.served.ask("mail.example.")
        self.assertEqual(response.answer[0][0].address, "192.0.2.26")
        self.assertEqual(self.served.calls, 1)


class ServerTests(TestCase):
    def setUp(self) -> None:
        self.served = Listening()
        self.addCleanup(self.served.listener.stopService)

    @defer.inlineCallbacks
    def test_udp_and_tcp_answers(self):
        for tcp in (False, True):
            response = yield self.served.ask("ns1.example.", tcp=tcp)
            self.assertEqual(response.answer[0].to_text(), "ns1.example. 3600 IN A 192.0.2.53")

    @defer.inlineCallbacks
    def test_second_answer_comes_from_cache_with_its_own_id(self):
        first = yield self.served.ask("mail.example.")
        second = yield self.served.ask("mail.example.")
        self.assertEqual(self.served.calls, 1)
        self.assertEqual(first.answer, second.answer)
        self.assertNotEqual(first.id, second.id)

    @defer.inlineCallbacks
    def test_changed_zone_invalidates_its_answers(self):
        yield self.served.ask("mail.example.")
        new = zoneset(example=EXAMPLE.replace("192.0.2.25", "192.0.2.26"))
        self.served.authority.on_change(
            lambda result, previous: self.served.cache.invalidate(result.changed)
        )
        self.served.authority.swap(
            Served(new), LoadResult(new, [], frozenset({dns.name.from_text("example.")}))
        )
        response = yield self.served.ask("mail.example.")
        self.assertEqual(response.answer[0][0].address, "192.0.2.26")

    @defer.inlineCallbacks
    def test_pipelined_tcp_queries_answered_in_order(self):
        def pipeline() -> tuple[list[dns.message.Message], list[dns.message.Message]]:
            queries = [
                dns.message.make_query(n, "A")
                for n in ("ns1.example.", "mail.example.", "nope.example.")
            ]
            with socket.create_connection(("127.0.0.1", self.served.port), timeout=5) as sock:
                wires = [query.to_wire() for query in queries]
                sock.sendall(b"".join(len(w).to_bytes(2, "big") + w for w in wires))
                return [dns.query.receive_tcp(sock, expiration=None)[0] for _ in queries], queries

        responses, queries = yield threads.deferToThread(pipeline)
        self.assertEqual([r.id for r in responses], [q.id for q in queries])
        self.assertEqual(responses[2].rcode(), dns.rcode.NXDOMAIN)

    @defer.inlineCallbacks
    def test_garbage_does_not_stop_service(self):
        def send_garbage() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for packet in (b"", b"\x00", b"\xff" * 11, b"\x00" * 12, b"\xff" * 600):
                    sock.sendto(packet, ("127.0.0.1", self.served.port))

        yield threads.deferToThread(send_garbage)
        response = yield self.served.ask("ns1.example.")
        self.assertEqual(response.rcode(), dns.rcode.NOERROR)


def _read_or_reset(sock: socket.socket) -> bytes:
    try:
        return sock.recv(10)
    except ConnectionResetError:
        return b""


class TCPLimitTests(TestCase):
    @defer.inlineCallbacks
    def test_full_table_makes_room_by_closing_the_least_recently_active(self):
        served = Listening(max_connections=2, idle_timeout=30)
        self.addCleanup(served.listener.stopService)

        def crowd() -> tuple[bytes, dns.message.Message]:
            address = ("127.0.0.1", served.port)
            idle = socket.create_connection(address)
            busy = socket.create_connection(address)
            try:
                time.sleep(0.1)
                busy.sendall(_framed("ns1.example."))
                dns.query.receive_tcp(busy, expiration=time.time() + 5)
                with socket.create_connection(address, timeout=5) as newcomer:
                    newcomer.sendall(_framed("mail.example."))
                    answer, _ = dns.query.receive_tcp(newcomer, expiration=time.time() + 5)
                idle.settimeout(5)
                return _read_or_reset(idle), answer
            finally:
                idle.close()
                busy.close()

        evicted, answer = yield threads.deferToThread(crowd)
        self.assertEqual(evicted, b"", "the idle connection made room")
        self.assertEqual(answer.rcode(), dns.rcode.NOERROR)

    @defer.inlineCallbacks
    def test_trickling_client_is_cut_off(self):
        served = Listening(idle_timeout=0.5)
        self.addCleanup(served.listener.stopService)

        def trickle() -> bytes:
            wire = _framed("ns1.example.")
            with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
                try:
                    for byte in wire[:-1]:
                        sock.sendall(bytes([byte]))
                        time.sleep(0.05)
                except OSError:
                    return b""
                return _read_or_reset(sock)

        self.assertEqual((yield threads.deferToThread(trickle)), b"")


def _framed(qname: str) -> bytes:
    wire = dns.message.make_query(qname, "A").to_wire()
    return len(wire).to_bytes(2, "big") + wire


class ParseListenTests(TestCase):
    def test_forms(self) -> None:
        self.assertEqual(parse_listen("127.0.0.1:53"), ("127.0.0.1", 53))
        self.assertEqual(parse_listen("[::1]:5353"), ("::1", 5353))
        for bad in ("127.0.0.1", "::1:53", "host:53", "127.0.0.1:99999", "127.0.0.1:x"):
            self.assertRaises(ValueError, parse_listen, bad)
