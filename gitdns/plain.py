"""The common query read and answered as bytes, without dns.message or dns.renderer.

Most requests are plain: opcode QUERY, one question of class IN, no TSIG, at most an
EDNS version 0 OPT record without options but a cookie. Parsing one with dnspython and rendering the
answer with dns.renderer costs about 200 µs; a zone queried at random names misses the
response cache most of the time, so that cost sets the rate. Here the question is read
straight from the wire and the answer written with the same name compression as
dns.renderer, so the bytes are the same. Anything else (and an answer that would
need truncating) is left to the general path: these functions return None.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable
from typing import NamedTuple

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gitdns.answer import Answer
from gitdns.names import name_from_labels

IN = dns.rdataclass.IN
# The payload we offer and accept at most over UDP (DNS flag day 2020: no fragments).
UDP_PAYLOAD = 1232
TCP_LIMIT = 65535
# Question types answered by neither plain nor prerendered answers.
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
# QDCOUNT 1, ANCOUNT 0, NSCOUNT 0 and ARCOUNT 0 or 1 (the OPT record).
COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"
COUNTS_EDNS = b"\x00\x01\x00\x00\x00\x00\x00\x01"
# An OPT record's root owner and type, and its extended RCODE 0 and version 0.
OPT_START = b"\x00\x00\x29"
OPT_SIZE = 11
_COOKIE = b"\x00\x0a"
# Ours: that payload, extended RCODE 0, version 0, no flags, no options.
OPT_RECORD = OPT_START + UDP_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
_QR, _AA, _RD, _CD, _OPCODE = 0x8000, 0x0400, 0x0100, 0x0010, 0x7800
RR_HEAD = struct.Struct("!HHI")
_SOA_NUMBERS = struct.Struct("!IIIII")
_LENGTH = [bytes((length,)) for length in range(64)]


class PlainQuery(NamedTuple):
    qtype: int
    # Offset just past the question (its name ends 4 bytes before): the response
    # repeats the request up to here.
    question_end: int
    # The EDNS payload size offered, None without EDNS.
    payload: int | None

    def qname(self, wire: bytes) -> dns.name.Name:
        """The question's name, as sent."""
        labels = []
        offset = 12
        length = wire[offset]
        while length:
            start = offset + 1
            offset = start + length
            labels.append(wire[start:offset])
            length = wire[offset]
        labels.append(b"")
        return name_from_labels(tuple(labels))


def parse_plain(wire: bytes) -> PlainQuery | None:
    """The question of a plain query (see the module docstring), or None."""
    # QR 0 and opcode QUERY; the other header bits do not matter.
    if len(wire) < 17 or wire[2] & 0xF8:
        return None
    counts = wire[4:12]
    if counts != COUNTS and counts != COUNTS_EDNS:
        return None
    offset = 12
    try:
        length = wire[offset]
        while length:
            # 64 and above: compression pointers and obsolete label types.
            if length > 63:
                return None
            offset += length + 1
            length = wire[offset]
    except IndexError:
        return None
    offset += 1
    if offset - 12 > 255:
        return None
    question_end = offset + 4
    if wire[offset + 2 : question_end] != b"\x00\x01":
        return None
    qtype = int.from_bytes(wire[offset : offset + 2], "big")
    payload = None
    if counts == COUNTS_EDNS:
        payload = plain_opt(wire, question_end)
        if payload is None:
            return None
    elif len(wire) != question_end:
        return None
    return PlainQuery(qtype, question_end, payload)


def plain_opt(wire: bytes, start: int) -> int | None:
    """The payload size of the OPT record at start in wire when it is a plain one:
    version 0 (higher is BADVERS), the last record, with no options or one COOKIE
    option (RFC 7873) of a valid size; else None.

    Resolvers such as BIND send a cookie with every query. We answer without cookies
    (a server that does not implement them ignores the option, RFC 7873 5.2), as the
    general path does: the answer is the one to the query without the option."""
    end = start + OPT_SIZE
    opt = wire[start:end]
    options = wire[end:]
    if (
        len(opt) != OPT_SIZE
        or opt[:3] != OPT_START
        or opt[5:7] != b"\x00\x00"
        or int.from_bytes(opt[9:], "big") != len(options)
    ):
        return None
    if options:
        # A client cookie of 8 bytes, with a server cookie of 8 to 32 or none.
        size = len(options) - 4
        if not (size == 8 or 16 <= size <= 40) or options[:4] != _COOKIE + size.to_bytes(2, "big"):
            return None
    return opt[3] << 8 | opt[4]


def render_plain(wire: bytes, query: PlainQuery, answer: Answer, *, limit: int) -> bytes | None:
    """The response to the plain query wire, as dns.renderer would write it; None when
    it exceeds limit or holds a record not written here."""
    if answer.rcode > 15:
        return None
    out = bytearray(wire[: query.question_end])
    counts = write_sections(out, question_compression(wire[12 : query.question_end - 4]), answer)
    if counts is None:
        return None
    edns = query.payload is not None
    if len(out) + (OPT_SIZE if edns else 0) > limit:
        return None
    flags = int.from_bytes(wire[2:4], "big")
    flags = _QR | (flags & (_RD | _CD | _OPCODE)) | answer.rcode
    if answer.authoritative:
        flags |= _AA
    out[2:12] = struct.pack("!HHHHH", flags, 1, counts[0], counts[1], counts[2] + edns)
    if edns:
        out += OPT_RECORD
    return bytes(out)


def question_compression(qname: bytes) -> dict[bytes, int]:
    """The compression targets a response starts with: the question's name (qname, in
    wire form, right after the header) and its suffixes, as lower-case wire form."""
    qname = qname.lower()
    compress = {}
    offset = 0
    while qname[offset]:
        compress[qname[offset:]] = 12 + offset
        offset += qname[offset] + 1
    return compress


def write_sections(out: bytearray, compress: dict[bytes, int], answer: Answer) -> list[int] | None:
    """Append answer's three sections; their record counts, or None for a type not
    written here."""
    counts = []
    for section in (answer.answer, answer.authority, answer.additional):
        count = 0
        for rrset in section:
            written = write_rrset(out, compress, rrset)
            if written is None:
                return None
            count += written
        counts.append(count)
    return counts


def write_rrset(out: bytearray, compress: dict[bytes, int], rrset: dns.rrset.RRset) -> int | None:
    """Append rrset's records as Rdataset.to_wire does (order shuffled the same way);
    the number of records, or None for a type not written here."""
    if rrset.rdclass != IN:
        return None
    rdtype = rrset.rdtype
    write_rdata = RDATA_WRITERS.get(rdtype, _write_other)
    if write_rdata is None:
        return None
    rdatas = list(rrset)
    if len(rdatas) > 1:
        random.shuffle(rdatas)
    head = RR_HEAD.pack(rdtype, IN, rrset.ttl)
    owner = rrset.name.labels
    for rdata in rdatas:
        _write_name(out, compress, owner)
        out += head
        start = len(out)
        out += b"\x00\x00"
        write_rdata(out, compress, rdata)
        out[start : start + 2] = (len(out) - start - 2).to_bytes(2, "big")
    return len(rdatas)


def _write_name(out: bytearray, compress: dict[bytes, int], labels: tuple[bytes, ...]) -> None:
    """Append the name of labels, compressed as dns.name.Name.to_wire does: a pointer to
    the longest suffix written before, each new suffix (but the root) remembered."""
    plain = b"".join([_LENGTH[len(label)] + label for label in labels])
    key = plain.lower()
    offset = 0
    while key[offset]:
        suffix = key[offset:]
        position = compress.get(suffix)
        if position is not None:
            out += (0xC000 | position).to_bytes(2, "big")
            return
        here = len(out)
        if here <= 0x3FFF:
            compress[suffix] = here
        end = offset + key[offset] + 1
        out += plain[offset:end]
        offset = end
    out.append(0)


RdataWriter = Callable[[bytearray, dict[bytes, int], dns.rdata.Rdata], None]


def _write_a(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    out += socket.inet_pton(socket.AF_INET, rdata.address)


def _write_aaaa(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    out += socket.inet_pton(socket.AF_INET6, rdata.address)


def _write_txt(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    for string in rdata.strings:
        out.append(len(string))
        out += string


def _write_target(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    _write_name(out, compress, rdata.target.labels)


def _write_mx(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    out += rdata.preference.to_bytes(2, "big")
    _write_name(out, compress, rdata.exchange.labels)


def _write_soa(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    _write_name(out, compress, rdata.mname.labels)
    _write_name(out, compress, rdata.rname.labels)
    out += _SOA_NUMBERS.pack(rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum)


def _write_other(out: bytearray, compress: dict[bytes, int], rdata: dns.rdata.Rdata) -> None:
    # The remaining types never compress a name (RFC 3597 4), so their wire form
    # does not depend on what came before.
    out += rdata.to_wire()


# None: a type whose names dnspython compresses and that is not written here.
RDATA_WRITERS: dict[int, RdataWriter | None] = {
    dns.rdatatype.A: _write_a,
    dns.rdatatype.AAAA: _write_aaaa,
    dns.rdatatype.TXT: _write_txt,
    dns.rdatatype.MX: _write_mx,
    dns.rdatatype.NS: _write_target,
    dns.rdatatype.CNAME: _write_target,
    dns.rdatatype.PTR: _write_target,
    dns.rdatatype.SOA: _write_soa,
    dns.rdatatype.AMTRELAY: None,
}
