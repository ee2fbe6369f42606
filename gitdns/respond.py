"""From a request's bytes to the response's bytes (RFC 1035, RFC 6891, RFC 7766).

Pure: parsing, opcode dispatch, EDNS, and rendering with proper truncation. The shell
decides what to do with the result (send it, cache it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer

from gitdns.answer import Answer, resolve
from gitdns.keys import Operation
from gitdns.plain import (
    META_TYPES,
    TCP_LIMIT,
    TRANSFER_TYPES,
    UDP_PAYLOAD,
    parse_plain,
    render_plain,
)
from gitdns.prerendered import Table
from gitdns.tsig import Keyring, Signature, add_signature, check, read, signed
from gitdns.xfr import Delta, axfr_messages, ixfr_messages, ixfr_plan
from gitdns.zones import ZoneSet

# Size of an OPT record without options: root name, type, class, TTL, RDLENGTH.
OPT_SIZE = 11


Permission = Callable[[dns.name.Name, Operation, dns.name.Name], bool]


def _nobody(keyname: dns.name.Name, operation: Operation, zone: dns.name.Name) -> bool:
    return False


@dataclass(frozen=True)
class Served:
    """Everything answers are drawn from, replaced as one on reload."""

    zones: ZoneSet = field(default_factory=ZoneSet)
    keyring: Keyring = field(default_factory=dict)
    # may(key name, operation, zone): the access rule of SPEC.md.
    may: Permission = _nobody
    # --axfr: transfers without a key.
    open_axfr: bool = False
    # A secondary's zones past their expire time: answered SERVFAIL (RFC 1034 4.3.5).
    expired: frozenset[dns.name.Name] = frozenset()
    # False on a secondary: UPDATE is the primary's business (NOTAUTH).
    accepts_updates: bool = True
    # zone -> addresses whose unsigned NOTIFY is accepted (a secondary's primaries).
    notify_sources: Mapping[dns.name.Name, frozenset[str]] = field(default_factory=dict)
    # zone -> the differences between the versions served lately, oldest first (IXFR).
    journal: Mapping[dns.name.Name, tuple[Delta, ...]] = field(default_factory=dict)
    # Still loading at start-up: which names are ours is not known yet, nor the keys.
    loading: bool = False
    # Every zone by its origin's wire form (prerendered.wire_key) with its prerendered
    # answers, or None while they are not made (see gitdns.prerendered.kept_tables).
    # The server answers from them before calling respond(), which does not.
    tables: Mapping[bytes, Table | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Transfer:
    """A zone transfer to stream: its messages and what to log about it."""

    kind: str
    zone: dns.name.Name
    serial: int
    keyname: dns.name.Name | None
    messages: Iterator[bytes]


@dataclass(frozen=True)
class Request:
    query: dns.message.Message
    tcp: bool
    now: int
    signature: Signature | None
    wire: bytes = b""
    peer: str | None = None

    def reply(self, answer: Answer) -> bytes:
        limit = TCP_LIMIT if self.tcp else udp_limit(self.query)
        return render(self.query, answer, limit=limit, signature=self.signature, now=self.now)

    def error(self, rcode: int) -> Reply:
        return Reply(self.reply(Answer(rcode=rcode)))


@dataclass(frozen=True)
class NotifyReceived:
    """A NOTIFY came in; accepted when signed by a key with notify access to the zone."""

    zone: dns.name.Name
    keyname: dns.name.Name | None
    accepted: bool


@dataclass(frozen=True)
class SecondaryRegistered:
    """A signed SOA query over TCP with a transfer key: its sender wants our NOTIFYs
    for zone (for every zone when zone is the root)."""

    zone: dns.name.Name
    keyname: dns.name.Name


@dataclass(frozen=True)
class UpdateReceived:
    """An UPDATE authorised for zone; the shell applies it and answers with request.reply."""

    zone: dns.name.Name
    request: Request


Event = NotifyReceived | SecondaryRegistered | UpdateReceived


class Reply(NamedTuple):
    """What respond() gives the shell. A named tuple: made for every answer not
    cached yet, and a frozen dataclass takes several times as long to make."""

    wire: bytes
    # The zones this answer was drawn from; an unsigned answer with origins may be
    # cached until one of them changes.
    origins: frozenset[dns.name.Name] = frozenset()
    transfer: Transfer | None = None
    # Something the shell must act on (fetch, remember a secondary).
    event: Event | None = None
    # The request carried a valid TSIG: exempt from response rate limiting.
    authenticated: bool = False


def respond(
    served: Served, wire: bytes, *, tcp: bool, now: int, peer: str | None = None
) -> Reply | None:
    """The response to one request, or None when it must be dropped silently.

    Requests that cannot be parsed get FORMERR when their header can be read; responses
    (QR set) and fragments shorter than a header get nothing. now is the time in
    seconds since the epoch; peer the client's address.
    """
    reply = answer_plain(served, wire, tcp=tcp, now=now)
    if reply is not None:
        return reply
    return respond_general(served, wire, tcp=tcp, now=now, peer=peer)


def respond_general(
    served: Served, wire: bytes, *, tcp: bool, now: int, peer: str | None = None
) -> Reply | None:
    """respond() for any request, through dnspython's parser and renderer."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    try:
        query, verified = read(wire, served.keyring)
    except dns.message.ShortHeader:
        return None
    except Exception:
        # Malformed in any way dnspython notices (a TSIG record not last included):
        # FORMERR, built from the header alone.
        return Reply(header_error(wire, dns.rcode.FORMERR))
    if served.loading:
        # SERVFAIL, not REFUSED: a resolver asks again (or another server) instead of
        # taking us for lame; NOTIFY and UPDATE senders retry too.
        return Request(query, tcp, now, None).error(dns.rcode.SERVFAIL)
    signature = None
    if query.had_tsig:
        signature = check(wire, query, served.keyring, verified)
        if signature.rcode == dns.rcode.FORMERR:
            return Reply(Request(query, tcp, now, None).reply(Answer(rcode=dns.rcode.FORMERR)))
        if not signature.ok:
            return Request(query, tcp, now, signature).error(signature.rcode)
    request = Request(query, tcp, now, signature, wire, peer)
    opcode = query.opcode()
    if opcode == dns.opcode.QUERY:
        reply = answer_query(served, request)
    elif opcode == dns.opcode.NOTIFY:
        reply = answer_notify(served, request)
    elif opcode == dns.opcode.UPDATE:
        reply = answer_update(served, request)
    else:
        reply = request.error(dns.rcode.NOTIMP)
    return reply if signature is None else reply._replace(authenticated=True)


def answer_plain(served: Served, wire: bytes, *, tcp: bool, now: int) -> Reply | None:
    """respond() for a plain query, without dnspython messages (gitdns.plain); None
    when the request needs the general path. Both give the same bytes."""
    if served.expired or served.loading:
        return None
    query = parse_plain(wire)
    if query is None or query.qtype in META_TYPES or query.qtype in TRANSFER_TYPES:
        return None
    if tcp:
        limit = TCP_LIMIT
    elif query.payload is None:
        limit = 512
    else:
        limit = max(512, min(query.payload, UDP_PAYLOAD))
    answer = resolve(served.zones, query.qname(wire), query.qtype)
    response = render_plain(wire, query, answer, limit=limit)
    if response is None:
        return None
    return Reply(response, frozenset(answer.origins))


def header_error(wire: bytes, rcode: int) -> bytes:
    """An error answer echoing only the ID, opcode and RD of an unparsable request."""
    request_flags = int.from_bytes(wire[2:4], "big")
    response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
    response.flags = dns.flags.QR | (request_flags & (0x7800 | dns.flags.RD))
    response.set_rcode(rcode)
    return response.to_wire()


def answer_query(served: Served, request: Request) -> Reply:
    query = request.query
    if len(query.question) != 1:
        return request.error(dns.rcode.FORMERR)
    if query.edns > 0:
        return request.error(dns.rcode.BADVERS)
    question = query.question[0]
    if question.rdtype in META_TYPES:
        return request.error(dns.rcode.NOTIMP)
    if question.rdclass != dns.rdataclass.IN:
        return request.error(dns.rcode.REFUSED)
    if served.expired and _expired(served, question.name):
        return request.error(dns.rcode.SERVFAIL)
    if question.rdtype in TRANSFER_TYPES:
        return answer_transfer(served, request)
    answer = resolve(served.zones, question.name, question.rdtype)
    signature = request.signature
    if signature is None:
        return Reply(request.reply(answer), frozenset(answer.origins))
    # Signed answers are never cached: each carries its own MAC.
    event = None
    if (
        request.tcp
        and question.rdtype == dns.rdatatype.SOA
        and served.may(signature.keyname, Operation.TRANSFER, question.name)
    ):
        event = SecondaryRegistered(question.name, signature.keyname)
    return Reply(request.reply(answer), event=event)


def _expired(served: Served, name: dns.name.Name) -> bool:
    zone = served.zones.find(name)
    return zone is not None and zone.origin in served.expired


def answer_update(served: Served, request: Request) -> Reply:
    """RFC 2136 3.1 and SPEC.md: the zone must be ours and the key allowed to update it.

    Applying it is the shell's work (it ends in a git commit): the Reply carries it.
    """
    query = request.query
    if len(query.question) != 1 or query.question[0].rdtype != dns.rdatatype.SOA:
        return request.error(dns.rcode.FORMERR)
    zone = query.question[0].name
    if zone not in served.zones.zones or not served.accepts_updates:
        return request.error(dns.rcode.NOTAUTH)
    signature = request.signature
    if signature is None or not served.may(signature.keyname, Operation.UPDATE, zone):
        return request.error(dns.rcode.REFUSED)
    return Reply(b"", event=UpdateReceived(zone, request))


def answer_notify(served: Served, request: Request) -> Reply:
    """RFC 1996: always answered; acted on only when signed by a key with notify access."""
    query = request.query
    if len(query.question) != 1:
        return request.error(dns.rcode.FORMERR)
    zone = query.question[0].name
    signature = request.signature
    if signature is not None:
        accepted = served.may(signature.keyname, Operation.NOTIFY, zone)
    else:
        accepted = request.peer in served.notify_sources.get(zone, ())
    answer = Answer(
        rcode=dns.rcode.NOERROR if accepted else dns.rcode.REFUSED, authoritative=accepted
    )
    keyname = signature.keyname if signature else None
    return Reply(request.reply(answer), event=NotifyReceived(zone, keyname, accepted))


def answer_transfer(served: Served, request: Request) -> Reply:
    """AXFR (TCP only) and IXFR (RFC 1995), with transfer access (SPEC.md)."""
    query = request.query
    question = query.question[0]
    ixfr = question.rdtype == dns.rdatatype.IXFR
    if not request.tcp and not ixfr:
        return request.error(dns.rcode.REFUSED)
    zone = served.zones.zones.get(question.name)
    signature = request.signature
    allowed = served.open_axfr or (
        signature is not None and served.may(signature.keyname, Operation.TRANSFER, question.name)
    )
    if zone is None or not allowed:
        return request.error(dns.rcode.NOTAUTH)
    keyname = signature.keyname if signature else None
    if not ixfr:
        messages = axfr_messages(zone, query, signature, request.now)
        return Reply(b"", transfer=Transfer("AXFR", zone.origin, zone.serial, keyname, messages))
    theirs = [rrset for rrset in query.authority if rrset.rdtype == dns.rdatatype.SOA]
    if not theirs:
        return request.error(dns.rcode.FORMERR)
    serial = theirs[0][0].serial
    if not request.tcp or serial == zone.serial:
        # Current, or over UDP: the SOA alone; the client asks again over TCP (RFC 1995 2).
        return Reply(request.reply(Answer(authoritative=True, answer=[zone.soa])))
    plan = ixfr_plan(zone, served.journal.get(zone.origin, ()), serial)
    if plan is None:
        messages = axfr_messages(zone, query, signature, request.now)
        kind = f"IXFR from {serial} (AXFR-style)"
    else:
        messages = ixfr_messages(zone, plan, query, signature, request.now)
        kind = f"IXFR from {serial}"
    return Reply(b"", transfer=Transfer(kind, zone.origin, zone.serial, keyname, messages))


def udp_limit(query: dns.message.Message) -> int:
    """The largest UDP response the client takes (RFC 6891 6.2.5), capped at ours."""
    if query.edns < 0:
        return 512
    return max(512, min(query.payload, UDP_PAYLOAD))


def render(
    query: dns.message.Message,
    answer: Answer,
    *,
    limit: int,
    signature: Signature | None = None,
    now: int = 0,
) -> bytes:
    """Render the response to query, truncating at whole RRsets when it exceeds limit.

    Answer and authority RRsets that do not fit set TC (RFC 2181 9); additional
    records are dropped silently unless they are referral glue (RFC 9471).
    """
    flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD)) | (query.flags & 0x7800)
    if answer.authoritative:
        flags |= dns.flags.AA
    rcode_flags, ednsflags = dns.rcode.to_flags(answer.rcode)
    flags |= rcode_flags
    edns = query.edns >= 0 or answer.rcode > 15
    reserve = (OPT_SIZE if edns else 0) + (signature.reserve() if signature else 0)
    renderer = dns.renderer.Renderer(query.id, flags, limit)
    renderer.reserve(reserve)
    try:
        for question in query.question:
            renderer.add_question(question.name, question.rdtype, question.rdclass)
    except dns.exception.TooBig:
        # Not even the question fits (long names, several questions, a long key name):
        # the header alone, truncated, so the client asks again over TCP.
        renderer = dns.renderer.Renderer(query.id, flags | dns.flags.TC, max(limit, reserve + 12))
        renderer.reserve(reserve)
        answer = Answer(rcode=answer.rcode, authoritative=answer.authoritative)
    try:
        for rrset in answer.answer:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)
        for rrset in answer.authority:
            renderer.add_rrset(dns.renderer.AUTHORITY, rrset)
        for index, rrset in enumerate(answer.additional):
            try:
                renderer.add_rrset(dns.renderer.ADDITIONAL, rrset)
            except dns.exception.TooBig:
                if index < answer.required_additional:
                    raise
                break
    except dns.exception.TooBig:
        renderer.flags |= dns.flags.TC
    renderer.release_reserved()
    if edns:
        renderer.add_edns(0, ednsflags, UDP_PAYLOAD)
    renderer.write_header()
    if signature is not None and signature.key is not None:
        return signed(renderer.get_wire(), signature, now)
    if signature is not None:
        add_signature(renderer, signature, now)
    return renderer.get_wire()
