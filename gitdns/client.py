"""Outgoing DNS over UDP and TCP: one request, its response(s), TSIG checked by dnspython.

Shared by the NOTIFY fan-out and (later) the secondary and the ACME helper. Only
moves bytes: the messages are built and read by dnspython.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import dns.exception
import dns.message
from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IReactorTCP, IReactorTime, IReactorUDP
from twisted.python.failure import Failure


class DNSClientError(Exception):
    """No usable response: timeout, refused connection, or a response that fails TSIG."""


def parse_response(query: dns.message.Message, wire: bytes, **kw: object) -> dns.message.Message:
    """Read a response to query, verifying its TSIG when the query was signed."""
    response = dns.message.from_wire(wire, keyring=query.keyring, request_mac=query.mac, **kw)
    if not query.is_response(response):
        raise DNSClientError("the response does not match the request")
    return response


class _UDPExchange(protocol.DatagramProtocol):
    noisy = False

    def __init__(self, query: dns.message.Message, wire: bytes, address: tuple[str, int]) -> None:
        self.query = query
        self.wire = wire
        self.address = address
        self.result: defer.Deferred[dns.message.Message] = defer.Deferred()

    def startProtocol(self) -> None:
        self.transport.write(self.wire, self.address)

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr[:2] != self.address or self.result.called:
            return
        try:
            response = parse_response(self.query, data)
        except (dns.exception.DNSException, DNSClientError):
            return  # not ours, or forged: keep waiting until the timeout
        self.result.callback(response)

    def connectionRefused(self) -> None:
        if not self.result.called:
            self.result.errback(DNSClientError("port unreachable"))


def query_udp(
    reactor: IReactorUDP | IReactorTime,
    host: str,
    port: int,
    query: dns.message.Message,
    timeout: float,
) -> defer.Deferred[dns.message.Message]:
    exchange = _UDPExchange(query, query.to_wire(), (host, port))
    interface = "::" if ipaddress.ip_address(host).version == 6 else "0.0.0.0"
    listening = reactor.listenUDP(0, exchange, interface=interface)
    result = exchange.result.addTimeout(timeout, reactor)

    def close(outcome: object) -> object:
        listening.stopListening()
        return outcome

    return result.addBoth(close).addErrback(_explain, host, port, "UDP")


class _TCPExchange(protocol.Protocol):
    """Sends one framed request; hands each framed response to on_message until done."""

    def __init__(self, wire: bytes, on_message: Callable[[bytes], bool]) -> None:
        self.wire = wire
        self.on_message = on_message
        self.buffer = b""
        self.done: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(len(self.wire).to_bytes(2, "big") + self.wire)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2 and not self.done.called:
            length = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + length:
                return
            message, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
            try:
                finished = self.on_message(message)
            except Exception:
                self.done.errback(Failure())
                self.transport.loseConnection()
                return
            if finished:
                self.done.callback(None)
                self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if not self.done.called:
            self.done.errback(DNSClientError("connection closed before the response"))


def exchange_tcp(
    reactor: IReactorTCP | IReactorTime,
    host: str,
    port: int,
    wire: bytes,
    on_message: Callable[[bytes], bool],
    timeout: float,
) -> defer.Deferred[None]:
    """Send wire over TCP; on_message(response) returns True once all has arrived."""
    exchange = _TCPExchange(wire, on_message)
    factory = protocol.ClientFactory.forProtocol(lambda: exchange)
    factory.noisy = False
    connector = reactor.connectTCP(host, port, factory, timeout=timeout)
    factory.clientConnectionFailed = lambda connector, reason: exchange.done.errback(reason)

    def give_up(failure: Failure) -> Failure:
        connector.disconnect()
        return failure

    return exchange.done.addTimeout(timeout, reactor).addErrback(give_up)


def query_tcp(
    reactor: IReactorTCP | IReactorTime,
    host: str,
    port: int,
    query: dns.message.Message,
    timeout: float,
) -> defer.Deferred[dns.message.Message]:
    responses: list[dns.message.Message] = []

    def one(wire: bytes) -> bool:
        responses.append(parse_response(query, wire))
        return True

    d = exchange_tcp(reactor, host, port, query.to_wire(), one, timeout)
    return d.addCallback(lambda _: responses[0]).addErrback(_explain, host, port, "TCP")


def query_tcp_then_udp(
    reactor: IReactorTCP | IReactorUDP | IReactorTime,
    host: str,
    port: int,
    query: dns.message.Message,
    timeout: float,
) -> defer.Deferred[dns.message.Message]:
    """TCP first; UDP when TCP cannot connect (a peer that serves UDP only)."""

    def fall_back(failure: Failure) -> defer.Deferred[dns.message.Message]:
        failure.trap(DNSClientError)
        return query_udp(reactor, host, port, query, timeout)

    return query_tcp(reactor, host, port, query, timeout).addErrback(fall_back)


def _explain(failure: Failure, host: str, port: int, transport: str) -> Failure:
    """Every failure becomes one DNSClientError saying what happened with whom."""
    if failure.check(DNSClientError):
        reason = str(failure.value)
    elif failure.check(defer.TimeoutError, defer.CancelledError):
        reason = "no response"
    elif failure.check(error.ConnectError):
        reason = "cannot connect"
    elif failure.check(dns.exception.DNSException):
        reason = f"bad response ({failure.value})"
    else:
        reason = str(failure.value) or failure.type.__name__
    return Failure(DNSClientError(f"{transport} {host} port {port}: {reason}"))


class SourceBoundReactor:
    """The reactor, but TCP connections leave from source: a gitdns primary NOTIFYs the
    address a signed SOA query came from, which must be the one we listen on."""

    def __init__(self, reactor: Any, source: str) -> None:
        self._reactor = reactor
        self._source = source

    def connectTCP(
        self, host: str, port: int, factory: Any, timeout: float = 30, bindAddress: Any = None
    ) -> Any:
        return self._reactor.connectTCP(
            host, port, factory, timeout=timeout, bindAddress=bindAddress or (self._source, 0)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


def bound_to_listen_address(reactor: Any, listen: Sequence[tuple[str, int]], peer: str) -> Any:
    """reactor, bound to the listen address when there is exactly one specific address of
    peer's family (with 0.0.0.0 or several, the system picks the source)."""
    if len(listen) != 1:
        return reactor
    try:
        source = ipaddress.ip_address(listen[0][0])
        family = ipaddress.ip_address(peer).version
    except ValueError:
        return reactor
    if source.is_unspecified or source.version != family:
        return reactor
    return SourceBoundReactor(reactor, str(source))
