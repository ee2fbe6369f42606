"""From a request's bytes to the response's bytes (RFC 1035, RFC 6891, RFC 7766).

Pure: parsing, opcode dispatch, EDNS, and rendering with proper truncation. The shell
decides what to do with the result (send it, cache it).
"""

from __future__ import annotations

from dataclasses import dataclass

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
from gitdns.zones import ZoneSet

# The payload we offer and accept at most over UDP (DNS flag day 2020: no fragments).
UDP_PAYLOAD = 1232
# Size of an OPT record without options: root name, type, class, TTL, RDLENGTH.
OPT_SIZE = 11
TCP_LIMIT = 65535

META_TYPES = frozenset(
    {
        dns.rdatatype.OPT,
        dns.rdatatype.TSIG,
        dns.rdatatype.TKEY,
        dns.rdatatype.MAILA,
        dns.rdatatype.MAILB,
    }
)
TRANSFER_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})


@dataclass(frozen=True)
class Reply:
    wire: bytes
    # The zones this answer was drawn from; an unsigned answer with origins may be
    # cached until one of them changes.
    origins: frozenset[dns.name.Name] = frozenset()


def respond(zoneset: ZoneSet, wire: bytes, *, tcp: bool) -> Reply | None:
    """The response to one request, or None when it must be dropped silently.

    Requests that cannot be parsed get FORMERR when their header can be read; responses
    (QR set) and fragments shorter than a header get nothing.
    """
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    try:
        query = dns.message.from_wire(wire, keyring=False)
    except dns.message.ShortHeader:
        return None
    except Exception:
        # Malformed in any way dnspython notices: FORMERR, built from the header alone.
        return Reply(header_error(wire, dns.rcode.FORMERR))
    opcode = query.opcode()
    if opcode == dns.opcode.QUERY:
        return answer_query(zoneset, query, tcp=tcp)
    if opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE):
        # Both need a key with access to the zone; none is configured yet.
        return Reply(error(query, dns.rcode.REFUSED, tcp=tcp))
    return Reply(error(query, dns.rcode.NOTIMP, tcp=tcp))


def header_error(wire: bytes, rcode: int) -> bytes:
    """An error answer echoing only the ID, opcode and RD of an unparsable request."""
    request_flags = int.from_bytes(wire[2:4], "big")
    response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
    response.flags = dns.flags.QR | (request_flags & (0x7800 | dns.flags.RD))
    response.set_rcode(rcode)
    return response.to_wire()


def answer_query(zoneset: ZoneSet, query: dns.message.Message, *, tcp: bool) -> Reply:
    if len(query.question) != 1:
        return Reply(error(query, dns.rcode.FORMERR, tcp=tcp))
    if query.edns > 0:
        return Reply(error(query, dns.rcode.BADVERS, tcp=tcp))
    question = query.question[0]
    if question.rdtype in META_TYPES:
        return Reply(error(query, dns.rcode.NOTIMP, tcp=tcp))
    if question.rdclass != dns.rdataclass.IN:
        return Reply(error(query, dns.rcode.REFUSED, tcp=tcp))
    if question.rdtype in TRANSFER_TYPES:
        # Zone transfers need a key with transfer access; none is configured yet.
        return Reply(error(query, dns.rcode.REFUSED, tcp=tcp))
    answer = resolve(zoneset, question.name, question.rdtype)
    wire = render(query, answer, limit=TCP_LIMIT if tcp else udp_limit(query))
    return Reply(wire, frozenset(answer.origins))


def udp_limit(query: dns.message.Message) -> int:
    """The largest UDP response the client takes (RFC 6891 6.2.5), capped at ours."""
    if query.edns < 0:
        return 512
    return max(512, min(query.payload, UDP_PAYLOAD))


def error(query: dns.message.Message, rcode: int, *, tcp: bool) -> bytes:
    return render(query, Answer(rcode=rcode), limit=TCP_LIMIT if tcp else udp_limit(query))


def render(query: dns.message.Message, answer: Answer, *, limit: int) -> bytes:
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
    renderer = dns.renderer.Renderer(query.id, flags, limit)
    if edns:
        renderer.reserve(OPT_SIZE)
    for question in query.question:
        renderer.add_question(question.name, question.rdtype, question.rdclass)
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
    return renderer.get_wire()
