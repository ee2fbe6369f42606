"""The DNS listeners: UDP and TCP (RFC 7766) sockets in front of the pure core.

This module only moves bytes. The hot path, a cached answer, is a dict lookup keyed by
the request without its ID, and a two-byte ID patch: no dnspython object is built.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import dns.name
import dns.rcode
from twisted.application import service
from twisted.internet import defer, interfaces, protocol, task, tcp, udp
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from gitdns.authority import GitAuthority
from gitdns.metrics import Metrics
from gitdns.names import wire_key
from gitdns.prerendered import answer_from_tables
from gitdns.ratelimit import RateLimiter, Verdict, truncated
from gitdns.respond import Reply, Transfer, header_error

log = Logger()

# Requests without their ID -> responses without theirs. Bounded: past the limit the
# oldest quarter goes, so a flood of distinct names cannot grow memory.
CACHE_LIMIT = 200_000
TCP_IDLE_TIMEOUT = 10.0
# Larger UDP requests are cut short (and fail to parse: FORMERR). recvfrom() allocates
# this much per datagram, so 64 KiB would cost more than the whole cached answer;
# clients send anything that large over TCP.
UDP_RECEIVE_SIZE = 4096
TCP_MAX_CONNECTIONS = 150


class ResponseCache:
    """Rendered answers, dropped when a zone they were drawn from changes."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self.udp: dict[bytes, bytes] = {}
        self.tcp: dict[bytes, bytes] = {}
        # Origin (names.wire_key: its hash is kept, a Name's is made at each use) ->
        # the keys of the answers drawn from it, in udp and in tcp.
        self._keys: dict[bytes, tuple[list[bytes], list[bytes]]] = {}

    def store(self, tcp: bool, request: bytes, reply: Reply) -> None:
        if not reply.origins:
            return
        if len(self.udp) + len(self.tcp) >= self.limit:
            self._evict_oldest()
        key = request[2:]
        (self.tcp if tcp else self.udp)[key] = reply.wire[2:]
        for origin in reply.origins:
            self._remember(wire_key(origin), tcp, key)

    def admit(self, tcp: bool, key: bytes, response: bytes, origin: bytes) -> None:
        """Store an answer that is cheap to make again (prerendered), drawn from the
        zone of origin (wire_key), only while there is room: not worth an eviction.
        key is the request without its ID."""
        if len(self.udp) + len(self.tcp) < self.limit:
            (self.tcp if tcp else self.udp)[key] = response[2:]
            # _remember inline: a big zone asked at random admits at every query.
            keys = self._keys.get(origin)
            if keys is None:
                keys = self._keys[origin] = ([], [])
            keys[tcp].append(key)

    def _remember(self, origin: bytes, tcp: bool, key: bytes) -> None:
        keys = self._keys.get(origin)
        if keys is None:
            keys = self._keys[origin] = ([], [])
        keys[tcp].append(key)

    def _evict_oldest(self) -> None:
        """Drop the oldest quarter of each table (dicts keep insertion order). Starting
        over instead would send every query through the core again at once, the
        popular names too: with a big zone asked at random, that halves the rate."""
        tables = (self.udp, self.tcp)
        for table in tables:
            for key in list(islice(table, len(table) // 4 + 1)):
                del table[key]
        for origin, listed in list(self._keys.items()):
            # A key stored again after an eviction is listed twice: once is enough.
            kept = tuple(
                list(dict.fromkeys(key for key in keys if key in table))
                for keys, table in zip(listed, tables, strict=True)
            )
            if kept[0] or kept[1]:
                self._keys[origin] = kept
            else:
                del self._keys[origin]

    def invalidate(self, origins: Iterable[dns.name.Name]) -> None:
        for origin in origins:
            for keys, table in zip(
                self._keys.pop(wire_key(origin), ((), ())), (self.udp, self.tcp), strict=True
            ):
                for key in keys:
                    table.pop(key, None)

    def clear(self) -> None:
        self.udp.clear()
        self.tcp.clear()
        self._keys.clear()


@dataclass(frozen=True)
class Later:
    """A response that is ready later: an UPDATE is answered once its commit is durable."""

    response: defer.Deferred[bytes]


Handler = Callable[[bytes, bool, tuple[str, int]], Reply | Later | None]


class RequestDispatcher:
    """Runs the core for requests the cache cannot answer; no exception gets out."""

    def __init__(
        self,
        handle: Handler,
        cache: ResponseCache,
        metrics: Metrics | None = None,
        authority: GitAuthority | None = None,
    ) -> None:
        self.handle = handle
        self.cache = cache
        # What is served: its prerendered tables answer before handle is called.
        self.authority = authority or GitAuthority()
        self.metrics = metrics or Metrics()
        self._reported: set[type] = set()

    def dispatch(self, wire: bytes, tcp: bool, peer: tuple[str, int]) -> Reply | Later | None:
        try:
            reply = self.handle(wire, tcp, peer)
        except Exception as exc:
            kind = type(exc)
            if kind not in self._reported:
                # Once per kind: a packet that triggers a bug must not flood the log.
                self._reported.add(kind)
                log.failure("Bug: exception answering a request from {peer}", peer=peer)
            if len(wire) < 12 or wire[2] & 0x80:
                return None
            return Reply(header_error(wire, dns.rcode.SERVFAIL))
        if isinstance(reply, Later):
            reply.response.addErrback(self._failed_later, wire, peer)
        elif reply is not None:
            self.cache.store(tcp, wire, reply)
        return reply

    def _failed_later(self, failure: Failure, wire: bytes, peer: tuple[str, int]) -> bytes:
        log.failure("Bug: no answer for a request from {peer}", failure, peer=peer)
        return header_error(wire, dns.rcode.SERVFAIL)


class DNSDatagramProtocol(protocol.DatagramProtocol):
    noisy = False

    def __init__(self, dispatcher: RequestDispatcher) -> None:
        self.dispatcher = dispatcher
        self.cache = dispatcher.cache.udp
        self.metrics = dispatcher.metrics
        self.hits = dispatcher.metrics.cache_hits
        self.responses = dispatcher.metrics.responses
        self.authority = dispatcher.authority
        self.prerendered_sent = dispatcher.metrics.prerendered
        self.admit = dispatcher.cache.admit

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        key = data[2:]
        cached = self.cache.get(key)
        if cached is not None:
            # The hot path: counted and sent inline (a method call costs as much).
            self.hits["udp"] += 1
            self.responses["udp", (data[2] >> 3) & 0x0F, cached[1] & 0x0F] += 1
            self.transport.write(data[:2] + cached, addr)
            return
        # A big zone asked at random misses the cache: the next hot path.
        tables = self.authority.served.tables
        if tables:
            found = answer_from_tables(tables, data, False)
            if found is not None:
                response, origin = found
                self.prerendered_sent["udp"] += 1
                self.responses["udp", 0, response[3] & 0x0F] += 1
                self.transport.write(response, addr)
                self.admit(False, key, response, origin)
                return
        reply = self.dispatcher.dispatch(data, False, addr)
        if isinstance(reply, Later):
            reply.response.addCallback(lambda wire: self._send(data, wire, addr))
        elif reply is not None and reply.wire:
            self._send(data, reply.wire, addr)

    def _send(self, request: bytes, response: bytes, addr: tuple[str, int]) -> None:
        self.metrics.response("udp", request, response)
        self.transport.write(response, addr)


class RateLimitedDatagramProtocol(DNSDatagramProtocol):
    """UDP with response rate limiting (--rrl-rate); a separate class so that the
    unlimited hot path pays nothing for it."""

    def __init__(
        self, dispatcher: RequestDispatcher, limiter: RateLimiter, clock: IReactorTime
    ) -> None:
        super().__init__(dispatcher)
        self.limiter = limiter
        self.clock = clock

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        cached = self.cache.get(data[2:])
        if cached is not None:
            self.hits["udp"] += 1
            self._limited(data, data[:2] + cached, addr)
            return
        tables = self.authority.served.tables
        found = answer_from_tables(tables, data, False) if tables else None
        if found is not None:
            self.prerendered_sent["udp"] += 1
            self._limited(data, found[0], addr)
            self.admit(False, data[2:], *found)
            return
        reply = self.dispatcher.dispatch(data, False, addr)
        if isinstance(reply, Later):
            reply.response.addCallback(lambda wire: self._limited(data, wire, addr))
        elif reply is not None and reply.wire:
            if reply.authenticated:
                self._send(data, reply.wire, addr)
            else:
                self._limited(data, reply.wire, addr)

    def _limited(self, request: bytes, response: bytes, addr: tuple[str, int]) -> None:
        verdict = self.limiter.decide(addr[0], request, response, self.clock.seconds())
        if verdict is Verdict.SEND:
            self._send(request, response, addr)
            return
        self.metrics.rate_limited += 1
        if verdict is Verdict.SLIP:
            self._send(request, truncated(request, response), addr)


@implementer(interfaces.IPushProducer)
class DNSStreamProtocol(protocol.Protocol, TimeoutMixin):
    """Length-prefixed messages (RFC 1035 4.2.2), pipelined, answered in order.

    A zone transfer is streamed cooperatively, so other clients are served meanwhile;
    requests pipelined behind it wait until it is done. The timeout runs from the last
    complete request: a client trickling bytes (slowloris) is cut off as an idle one.
    A client that does not read its answers stops being read (back-pressure).
    """

    def __init__(self, factory: DNSStreamFactory) -> None:
        self.factory = factory
        self.buffer = b""
        self.streaming: task.CooperativeTask | None = None

    def connectionMade(self) -> None:
        self.peer = self.transport.getPeer()
        self.setTimeout(self.factory.idle_timeout)
        self.transport.registerProducer(self, True)

    # IPushProducer: the transport pauses us when the client does not read.
    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        self._process()

    def _process(self) -> None:
        cache = self.factory.dispatcher.cache.tcp
        while len(self.buffer) >= 2 and self.streaming is None:
            length = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + length:
                return
            message, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
            self.resetTimeout()
            self.factory.touch(self)
            cached = cache.get(message[2:])
            if cached is not None:
                self.factory.dispatcher.metrics.cache_hits["tcp"] += 1
                self._send(message[:2] + cached, message)
                continue
            tables = self.factory.dispatcher.authority.served.tables
            found = answer_from_tables(tables, message, True) if tables else None
            if found is not None:
                self.factory.dispatcher.metrics.prerendered["tcp"] += 1
                self._send(found[0], message)
                self.factory.dispatcher.cache.admit(True, message[2:], *found)
                continue
            reply = self.factory.dispatcher.dispatch(
                message, True, (self.peer.host, self.peer.port)
            )
            if reply is None:
                continue
            if isinstance(reply, Later):
                # Answered when ready; clients match TCP responses by ID (RFC 7766 6.2.1.1).
                reply.response.addCallback(self._send, message)
            elif reply.transfer is not None:
                self._stream(reply.transfer)
            else:
                self._send(reply.wire, message)

    def _send(self, wire: bytes, request: bytes | None = None) -> None:
        if request is not None:
            self.factory.dispatcher.metrics.response("tcp", request, wire)
        self.transport.write(len(wire).to_bytes(2, "big") + wire)

    def _stream(self, transfer: Transfer) -> None:
        counts = [0, 0]

        def send_all() -> Iterator[None]:
            for wire in transfer.messages:
                self._send(wire)
                counts[0] += 1
                counts[1] += len(wire)
                self.resetTimeout()
                yield None

        def done(result: object) -> None:
            self.streaming = None
            self.factory.dispatcher.metrics.transfers_out[transfer.kind.split()[0]] += 1
            log.info(
                "{kind} of {zone} serial {serial} to {peer} (key {key}): "
                "{messages} messages, {size} bytes",
                kind=transfer.kind,
                zone=str(transfer.zone),
                serial=transfer.serial,
                peer=self.peer.host,
                key=str(transfer.keyname) if transfer.keyname else "none",
                messages=counts[0],
                size=counts[1],
            )
            self._process()

        def failed(reason: Failure) -> None:
            self.streaming = None
            if not reason.check(task.TaskStopped):
                log.failure(
                    "{kind} of {zone} to {peer} failed",
                    reason,
                    kind=transfer.kind,
                    zone=str(transfer.zone),
                    peer=self.peer.host,
                )
            self.transport.loseConnection()

        self.streaming = task.cooperate(send_all())
        self.streaming.whenDone().addCallbacks(done, failed)

    def timeoutConnection(self) -> None:
        self.transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        self.setTimeout(None)
        if self.streaming is not None:
            self.streaming.stop()
        self.factory.connections.pop(self, None)


class DNSStreamFactory(protocol.Factory):
    """TCP connections, at most max_connections: past that the least recently active
    one is closed to make room, so idle connections cannot lock clients out."""

    noisy = False

    def __init__(
        self,
        dispatcher: RequestDispatcher,
        idle_timeout: float = TCP_IDLE_TIMEOUT,
        max_connections: int = TCP_MAX_CONNECTIONS,
    ) -> None:
        self.dispatcher = dispatcher
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        # Ordered from least to most recently active.
        self.connections: dict[DNSStreamProtocol, None] = {}

    def touch(self, connection: DNSStreamProtocol) -> None:
        self.connections.pop(connection, None)
        self.connections[connection] = None

    def buildProtocol(self, addr: interfaces.IAddress) -> DNSStreamProtocol:
        while len(self.connections) >= self.max_connections:
            oldest = next(iter(self.connections))
            del self.connections[oldest]
            oldest.transport.abortConnection()
        connection = DNSStreamProtocol(self)
        self.connections[connection] = None
        return connection


_DROPPED_SEND_ERRORS = frozenset(
    {errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}
)


def _only_v6(sock: socket.socket) -> socket.socket:
    # [::]:53 must not claim IPv4 too, or 0.0.0.0:53 could not be bound beside it.
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


class _UDPPort(udp.Port):
    def createInternetSocket(self) -> socket.socket:
        return _only_v6(super().createInternetSocket())

    def write(self, datagram: bytes, addr: tuple[str, int] | None = None) -> None:
        """Send to an address recvfrom() gave us: no need to validate it as udp.Port does.

        That validation costs more than the rest of a cached answer. A reply that
        cannot be sent now (full buffer, ICMP error pending) is dropped like a lost
        packet; the client retries.
        """
        try:
            self.socket.sendto(datagram, addr)
        except BlockingIOError:
            pass
        except OSError as error:
            if error.errno not in _DROPPED_SEND_ERRORS:
                raise


class _TCPPort(tcp.Port):
    def createInternetSocket(self) -> socket.socket:
        return _only_v6(super().createInternetSocket())


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"listen address {text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"listen address {text!r}: write IPv6 addresses as [ADDR]:PORT")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        raise ValueError(f"listen address {text!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {text!r}: bad port {port!r}")
    return host, int(port)


class ListenerService(service.Service):
    """UDP and TCP sockets on one address, bound while still privileged (before -u/-g)."""

    def __init__(
        self,
        host: str,
        port: int,
        dispatcher: RequestDispatcher,
        stream_factory: DNSStreamFactory,
        reactor: object = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.dispatcher = dispatcher
        self.stream_factory = stream_factory
        self.reactor = reactor
        self.limiter = limiter
        self.ports: list[object] = []

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        if self.limiter is None:
            datagrams = DNSDatagramProtocol(self.dispatcher)
        else:
            datagrams = RateLimitedDatagramProtocol(self.dispatcher, self.limiter, self.reactor)
        udp_port = _UDPPort(
            self.port,
            datagrams,
            self.host,
            maxPacketSize=UDP_RECEIVE_SIZE,
            reactor=self.reactor,
        )
        udp_port.startListening()
        self.ports.append(udp_port)
        tcp_port = _TCPPort(
            udp_port.getHost().port, self.stream_factory, 50, self.host, self.reactor
        )
        tcp_port.startListening()
        self.ports.append(tcp_port)
        log.info("Listening on {host} port {port} (UDP and TCP)", host=self.host, port=self.port)

    def stopService(self) -> defer.Deferred[object]:
        super().stopService()
        ports, self.ports = self.ports, []
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])
