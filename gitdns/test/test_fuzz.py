"""Hostile input: respond() and the UDP/TCP handlers take any bytes and stay well-behaved.

The packet generators and mutators are plain functions of a random.Random, so that
bench/fuzz.py runs the very same ones for a million packets; here hypothesis draws
their seeds (and raw bytes, chunkings, configurations) for a bounded number of examples.

The properties (check_reply): respond never raises; it drops (None) only responses
(QR=1) and fragments shorter than a header; otherwise its wire parses, is a response
with the request's ID, fits the UDP limit (512 without EDNS, else the client's payload
capped at 1232, never below 512) over UDP and 65535 over TCP, and a request that
verified under a key is answered with a response that verifies under it too.
"""

from __future__ import annotations

import base64
import random
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig
import dns.update
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from gitdns.answer import Answer
from gitdns.authority import GitAuthority
from gitdns.keys import may
from gitdns.ratelimit import RateLimiter
from gitdns.respond import Reply, Served, UpdateReceived, respond
from gitdns.server import (
    DNSDatagramProtocol,
    DNSStreamFactory,
    DNSStreamProtocol,
    Later,
    RateLimitedDatagramProtocol,
    RequestDispatcher,
    ResponseCache,
)
from gitdns.test.test_prerendered import tables_for
from gitdns.test.zonedata import EXAMPLE, zoneset
from gitdns.xfr import zone_delta

# ---------------------------------------------------------------------------
# Keys and what is served

SECRET = base64.b64decode("kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")
TRANSFER_KEY = dns.tsig.Key("ops._transfer.example.", SECRET, dns.tsig.HMAC_SHA256)
UPDATE_KEY = dns.tsig.Key("admin._update.example.", SECRET * 2, dns.tsig.HMAC_SHA512)
NOTIFY_KEY = dns.tsig.Key("n._notify.example.org.", SECRET[:20], dns.tsig.HMAC_SHA1)
KNOWN_KEYS = (TRANSFER_KEY, UPDATE_KEY, NOTIFY_KEY)
KEYRING = {key.name: key for key in KNOWN_KEYS}
# Signers the server must turn away: unknown name, wrong secret, wrong algorithm.
STRANGER_KEY = dns.tsig.Key("stranger._update.example.", SECRET, dns.tsig.HMAC_SHA256)
FORGED_KEY = dns.tsig.Key(TRANSFER_KEY.name, b"\x00" * 32, dns.tsig.HMAC_SHA256)
WRONG_ALGORITHM_KEY = dns.tsig.Key(TRANSFER_KEY.name, SECRET, dns.tsig.HMAC_SHA512)
SIGNERS = (*KNOWN_KEYS, STRANGER_KEY, FORGED_KEY, WRONG_ALGORITHM_KEY)
# A key with a long name (unknown to the server): its TSIG record takes 300 bytes.
LONG_KEY = dns.tsig.Key(
    dns.name.from_text(".".join(["k" * 60] * 3) + "._update.example."),
    SECRET,
    dns.tsig.HMAC_SHA512,
)

EXAMPLE_ORIGIN = dns.name.from_text("example.")
CURRENT_SERIAL = 2024010101
JOURNAL_SERIAL = 2024010100
PEER = "127.0.0.1"


def served_variants() -> list[Served]:
    """A primary (IXFR journal), a secondary (one zone expired), an --axfr server and
    a primary with prerendered answers."""
    zones = zoneset()
    old = zoneset(
        example=EXAMPLE.replace(str(CURRENT_SERIAL), str(JOURNAL_SERIAL))
        + "gone 300 IN A 192.0.2.9\n"
    )
    journal = {
        EXAMPLE_ORIGIN: (zone_delta(old.zones[EXAMPLE_ORIGIN], zones.zones[EXAMPLE_ORIGIN]),)
    }
    return [
        Served(zones, KEYRING, may, journal=journal),
        Served(
            zones,
            KEYRING,
            may,
            expired=frozenset({dns.name.from_text("example.org.")}),
            accepts_updates=False,
            notify_sources={EXAMPLE_ORIGIN: frozenset({PEER})},
        ),
        Served(zones, KEYRING, may, open_axfr=True, journal=journal),
        # A primary whose answers are prerendered: the listeners ask the tables first.
        Served(zones, KEYRING, may, journal=journal, tables=tables_for(zones)),
    ]


# ---------------------------------------------------------------------------
# Wire building blocks

NAMES = [
    dns.name.from_text(text).to_wire()
    for text in (
        ".",
        "example.",
        "EXAMPLE.",
        "ns1.example.",
        "Ns1.ExAmPlE.",
        "mail.example.",
        "www.example.",
        "dangling.example.",
        "away.example.",
        "outside.example.",
        "loop1.example.",
        "x.wild.example.",
        "host.wild.example.",
        "a.b.cname.example.",
        "b.c.example.",
        "sub.example.",
        "deep.below.sub.example.",
        "ns.sub.example.",
        "_sip._udp.example.",
        "mixedcase.example.",
        "nope.example.",
        "nested.example.",
        "www.nested.example.",
        "example.org.",
        "ns.example.org.",
        "example.net.",
        "test.",
        "*.example.",
        "ops._transfer.example.",
    )
]


def wire_name(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


ROOT = wire_name(".")
EXAMPLE_NAME = wire_name("example.")
NS1_NAME = wire_name("ns1.example.")
# Zones to transfer, update or notify: ours, below ours, not ours, the root.
ZONE_NAMES = (
    EXAMPLE_NAME,
    EXAMPLE_NAME,
    wire_name("EXAMPLE."),
    wire_name("nested.example."),
    wire_name("example.org."),
    NS1_NAME,
    wire_name("example.net."),
    ROOT,
)
SERIALS = (CURRENT_SERIAL, JOURNAL_SERIAL, 7, 1, 0, 0xFFFFFFFF, CURRENT_SERIAL + 1)

A, NS, CNAME, SOA, MX, TXT, AAAA, SRV, DS = 1, 2, 5, 6, 15, 16, 28, 33, 43
OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY = 41, 249, 250, 251, 252, 253, 254, 255
TYPES = (A, NS, CNAME, SOA, MX, TXT, AAAA, SRV, DS, 10, 0, 65535, 65280)
META = (OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY)
IN, CH, HS, NONE, ANYCLASS = 1, 3, 4, 254, 255
CLASSES = (IN, CH, HS, NONE, ANYCLASS, 0, 2, 65535)
BYTES = (0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF, 0x29, 0xFA, 0xFC)

QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010


def header(
    ident: int, flags: int, qdcount: int, ancount: int = 0, nscount: int = 0, arcount: int = 0
) -> bytes:
    return struct.pack("!6H", ident, flags, qdcount, ancount, nscount, arcount)


def question(name: bytes, rdtype: int, rdclass: int = IN) -> bytes:
    return name + struct.pack("!HH", rdtype, rdclass)


def record(name: bytes, rdtype: int, rdclass: int, ttl: int, rdata: bytes) -> bytes:
    return name + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata) & 0xFFFF) + rdata


def soa_rdata(serial: int) -> bytes:
    return (
        NS1_NAME
        + b"\nhostmaster"
        + EXAMPLE_NAME
        + struct.pack("!5I", serial, 7200, 3600, 86400, 300)
    )


def message(
    ident: int, flags: int, sections: Sequence[Sequence[bytes]], counts: Sequence[int] | None = None
) -> bytes:
    """A message from its four sections (each a list of encoded entries)."""
    counts = counts or [len(section) for section in sections]
    return header(ident, flags, *counts) + b"".join(b"".join(section) for section in sections)


LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_*"


def random_label(rng: random.Random) -> bytes:
    size = rng.choice((1, 1, 3, 8, 63, rng.randrange(64)))
    if rng.random() < 0.7:
        return bytes(rng.choices(LETTERS, k=size))
    return rng.randbytes(size)


def random_name(rng: random.Random) -> bytes:
    """Mostly names our zones know about, sometimes random or maximal ones."""
    choice = rng.random()
    if choice < 0.6:
        return rng.choice(NAMES)
    labels: list[bytes] = []
    if choice < 0.85:
        labels = [random_label(rng) for _ in range(rng.randrange(1, 5))]
        suffix = rng.choice(NAMES)
    else:
        # As long as a name may be (255 bytes).
        suffix = b"\x00"
        while sum(len(label) + 1 for label in labels) + 64 <= 254:
            labels.append(random_label(rng)[:63] or b"x")
    wire = b"".join(bytes([len(label)]) + label for label in labels if label) + suffix
    return wire if len(wire) <= 255 else suffix


def random_type(rng: random.Random) -> int:
    choice = rng.random()
    if choice < 0.7:
        return rng.choice(TYPES)
    if choice < 0.9:
        return rng.choice(META)
    return rng.randrange(65536)


def random_class(rng: random.Random) -> int:
    return IN if rng.random() < 0.8 else rng.choice(CLASSES)


def random_opcode(rng: random.Random) -> int:
    choice = rng.random()
    if choice < 0.7:
        return dns.opcode.QUERY
    if choice < 0.8:
        return dns.opcode.NOTIFY
    if choice < 0.9:
        return dns.opcode.UPDATE
    return rng.randrange(16)


def random_flags(rng: random.Random, opcode: int) -> int:
    flags = opcode << 11
    for bit, chance in ((RD, 0.5), (CD, 0.1), (AD, 0.1), (AA, 0.05), (TC, 0.05), (RA, 0.05)):
        if rng.random() < chance:
            flags |= bit
    if rng.random() < 0.05:
        flags |= 0x0040  # Z
    if rng.random() < 0.05:
        flags |= rng.randrange(16)  # an rcode in a request
    if rng.random() < 0.03:
        flags |= QR
    return flags


def random_rdata(rng: random.Random, rdtype: int) -> bytes:
    if rng.random() < 0.2:
        return rng.randbytes(rng.randrange(40))
    if rdtype == A:
        return rng.randbytes(4)
    if rdtype == AAAA:
        return rng.randbytes(16)
    if rdtype == SOA:
        return soa_rdata(rng.choice(SERIALS))
    if rdtype in (NS, CNAME):
        return random_name(rng)
    if rdtype == MX:
        return struct.pack("!H", rng.randrange(65536)) + random_name(rng)
    if rdtype == TXT:
        text = rng.randbytes(rng.randrange(40))
        return bytes([len(text)]) + text
    return rng.randbytes(rng.randrange(20))


def random_record(rng: random.Random) -> bytes:
    rdtype = random_type(rng)
    rdclass = random_class(rng)
    ttl = rng.choice((0, 300, 0xFFFFFFFF, rng.randrange(1 << 32)))
    rdata = random_rdata(rng, rdtype)
    if rng.random() < 0.05:
        # RDLENGTH disagreeing with the data.
        return (
            random_name(rng)
            + struct.pack(
                "!HHIH", rdtype, rdclass, ttl, (len(rdata) + rng.choice((-1, 1, 100))) & 0xFFFF
            )
            + rdata
        )
    return record(random_name(rng), rdtype, rdclass, ttl, rdata)


def random_options(rng: random.Random) -> bytes:
    options = []
    for _ in range(rng.choice((0, 0, 1, 2, 5))):
        code = rng.choice((3, 8, 10, 12, 15, 0, 65535, rng.randrange(65536)))
        if code == 8:
            data = struct.pack(
                "!HBB", rng.choice((1, 2, 3)), rng.randrange(256), 0
            ) + rng.randbytes(rng.randrange(17))
        elif code == 10:
            data = rng.randbytes(rng.choice((8, 16, 24, 40, 7, 41)))
        else:
            data = rng.randbytes(rng.randrange(12))
        size = len(data) if rng.random() < 0.9 else rng.randrange(65536)
        options.append(struct.pack("!HH", code, size) + data)
    return b"".join(options)


def opt_record(rng: random.Random, owner: bytes = b"\x00", version: int | None = None) -> bytes:
    payload = rng.choice((512, 1232, 4096, 65535, 0, 1, 511, 1500, rng.randrange(65536)))
    if version is None:
        version = 0 if rng.random() < 0.85 else rng.choice((1, 2, 255))
    ext_rcode = 0 if rng.random() < 0.9 else rng.randrange(256)
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if rng.random() < 0.3 else 0)
    if rng.random() < 0.05:
        ttl |= rng.randrange(0x8000)
    return record(owner, OPT, payload, ttl, random_options(rng))


def tsig_rdata(
    algorithm: dns.name.Name,
    mac: bytes,
    original_id: int,
    *,
    signed_at: int,
    fudge: int = 300,
    error: int = 0,
    other: bytes = b"",
) -> dns.rdtypes.ANY.TSIG.TSIG:
    return dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        algorithm,
        signed_at,
        fudge,
        mac,
        original_id,
        error,
        other,
    )


def sign(
    wire: bytes,
    key: dns.tsig.Key,
    *,
    now: int | None = None,
    skew: int = 0,
    truncate_mac: int | None = None,
) -> bytes:
    """wire (any bytes with a 12-byte header) with a TSIG record by key appended."""
    now = int(time.time()) if now is None else now
    ident = int.from_bytes(wire[:2], "big")
    rdata = tsig_rdata(key.algorithm, b"", ident, signed_at=now + skew)
    rdata, _ = dns.tsig.sign(wire, key, rdata, now + skew)
    if truncate_mac is not None:
        rdata = rdata.replace(mac=rdata.mac[:truncate_mac])
    arcount = int.from_bytes(wire[10:12], "big")
    bumped = wire[:10] + ((arcount + 1) & 0xFFFF).to_bytes(2, "big") + wire[12:]
    return bumped + record(key.name.to_wire(), TSIG, ANYCLASS, 0, rdata.to_wire())


def maybe_sign(rng: random.Random, wire: bytes, chance: float = 0.3) -> bytes:
    if rng.random() >= chance or len(wire) < 12:
        return wire
    key = rng.choice(KNOWN_KEYS) if rng.random() < 0.6 else rng.choice(SIGNERS)
    skew = 0 if rng.random() < 0.9 else rng.choice((-3600, 3600, -301, 301))
    truncate = None if rng.random() < 0.9 else rng.choice((0, 9, 10, 16, 20))
    return sign(wire, key, skew=skew, truncate_mac=truncate)


# ---------------------------------------------------------------------------
# Generators: random.Random -> request bytes


def gen_random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(
        rng.choice((rng.randrange(12), rng.randrange(12, 64), rng.randrange(2000)))
    )


def gen_short(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randrange(12))


def gen_header_garbage(rng: random.Random) -> bytes:
    """A header with absurd section counts and little or nothing behind it."""
    counts = [rng.choice((0, 1, 2, 255, 0xFFFF, rng.randrange(65536))) for _ in range(4)]
    flags = random_flags(rng, random_opcode(rng))
    return header(rng.randrange(65536), flags, *counts) + rng.randbytes(rng.choice((0, 1, 5, 30)))


def gen_query(rng: random.Random) -> bytes:
    """A plausible request of any opcode, class and type, sometimes EDNS, sometimes signed."""
    opcode = random_opcode(rng)
    qdcount = rng.choice((1, 1, 1, 1, 1, 1, 0, 2, 3))
    questions = [
        question(random_name(rng), random_type(rng), random_class(rng)) for _ in range(qdcount)
    ]
    answers = [random_record(rng) for _ in range(rng.choice((0, 0, 0, 1, 2)))]
    authority = [random_record(rng) for _ in range(rng.choice((0, 0, 0, 1)))]
    additional = [random_record(rng) for _ in range(rng.choice((0, 0, 0, 0, 1)))]
    if rng.random() < 0.4:
        additional.append(opt_record(rng))
    wire = message(
        rng.randrange(65536), random_flags(rng, opcode), [questions, answers, authority, additional]
    )
    return maybe_sign(rng, wire)


def gen_many_questions(rng: random.Random) -> bytes:
    """Several questions that do not compress: their echo can exceed the UDP limit."""
    count = rng.choice((2, 5, 10, 40))
    questions = []
    for i in range(count):
        label = bytes([i % 256]) + rng.randbytes(rng.randrange(8, 63))
        questions.append(question(bytes([len(label)]) + label + b"\x00", random_type(rng)))
    additional = [opt_record(rng)] if rng.random() < 0.3 else []
    opcode = rng.choice((dns.opcode.QUERY, dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS))
    wire = message(rng.randrange(65536), opcode << 11, [questions, [], [], additional])
    return maybe_sign(rng, wire)


def gen_long_signed(rng: random.Random) -> bytes:
    """A long name signed by a long-named key: TSIG room plus question beyond 512."""
    name = random_name(rng) if rng.random() < 0.3 else _longest_name(rng)
    rdtype = rng.choice((A, SOA, TXT, AXFR, IXFR))
    flags = rng.choice((dns.opcode.QUERY, dns.opcode.NOTIFY, dns.opcode.UPDATE)) << 11
    additional = [opt_record(rng, version=0)] if rng.random() < 0.3 else []
    wire = message(rng.randrange(65536), flags, [[question(name, rdtype)], [], [], additional])
    return sign(wire, rng.choice((LONG_KEY, *SIGNERS)))


def _longest_name(rng: random.Random) -> bytes:
    labels = [bytes([63]) + bytes(rng.choices(b"abc", k=63)) for _ in range(3)]
    return b"".join(labels) + b"\x3d" + b"e" * 61 + b"\x00"


def gen_hostile_name(rng: random.Random) -> bytes:
    """Compression loops, forward pointers, pointers into the header or past the end,
    reserved label types, overlong labels and names."""
    ident = rng.randrange(65536)
    tricks = [
        b"\xc0\x0c",  # points at itself
        b"\x03abc\xc0\x0c",  # loops back to its start
        b"\xc0\x0e\xc0\x0c",  # two pointers chasing each other
        b"\xc0\xff",  # forward, past the end
        b"\xff\xff",
        b"\xc0\x04",  # into the header: QDCOUNT's high byte is a root label
        b"\xc0\x00",
        b"\x40abc\x00",  # reserved label type 01
        b"\x80abc\x00",  # reserved label type 10
        b"\x3fabc",  # label longer than the packet
        b"\x05ab",
        b"".join(b"\x01a" for _ in range(130)) + b"\x00",  # 261 bytes: too long
        b"\x3f"
        + b"a" * 63
        + b"\x3f"
        + b"b" * 63
        + b"\x3f"
        + b"c" * 63
        + b"\x3f"
        + b"d" * 63
        + b"\x00",
        b"\x00",
        b"",
    ]
    name = rng.choice(tricks)
    if rng.random() < 0.3:
        name = random_label(rng)[:5] + name
    where = rng.randrange(4)
    tail = struct.pack("!HH", random_type(rng), random_class(rng))
    if where == 0:
        sections: list[list[bytes]] = [[name + tail], [], [], []]
    else:
        # The bad name as an owner or inside RDATA of a record after a good question.
        rr = record(name, A, IN, 300, b"\x01\x02\x03\x04")
        if rng.random() < 0.5:
            rr = record(EXAMPLE_NAME, CNAME, IN, 300, name)
        sections = [[question(rng.choice(NAMES), A)], [], [], []]
        sections[where].append(rr)
    if rng.random() < 0.3:
        sections[3].append(opt_record(rng, version=0))
    flags = random_flags(rng, random_opcode(rng)) & ~QR
    return maybe_sign(rng, message(ident, flags, sections), 0.1)


def gen_absurd_counts(rng: random.Random) -> bytes:
    wire = bytearray(gen_query(rng))
    if len(wire) >= 12:
        index = 4 + 2 * rng.randrange(4)
        wire[index : index + 2] = rng.choice((0, 2, 100, 0x7FFF, 0xFFFF)).to_bytes(2, "big")
    return bytes(wire)


def gen_opt_abuse(rng: random.Random) -> bytes:
    """OPT in the wrong section, several OPTs, OPT not at the root, OPT as question type,
    versions above 0, bad options."""
    sections: list[list[bytes]] = [[question(rng.choice(NAMES), random_type(rng))], [], [], []]
    trick = rng.randrange(6)
    if trick == 0:
        sections[rng.choice((1, 2))].append(opt_record(rng))
    elif trick == 1:
        sections[3] += [opt_record(rng) for _ in range(rng.choice((2, 3)))]
    elif trick == 2:
        sections[3].append(opt_record(rng, owner=rng.choice(NAMES[1:])))
    elif trick == 3:
        sections[0] = [question(rng.choice(NAMES), OPT, rng.choice((512, 4096, IN)))]
        sections[3].append(opt_record(rng))
    elif trick == 4:
        sections[3].append(opt_record(rng, version=rng.randrange(1, 256)))
    else:
        sections[3] += [random_record(rng), opt_record(rng), random_record(rng)]
    opcode = random_opcode(rng)
    wire = message(rng.randrange(65536), random_flags(rng, opcode) & ~QR, sections)
    return maybe_sign(rng, wire)


def gen_tsig_abuse(rng: random.Random) -> bytes:
    """TSIG not last, in the answer section, twice, with garbage RDATA or odd fields."""
    query = message(
        rng.randrange(65536),
        random_flags(rng, random_opcode(rng)) & ~QR,
        [[question(rng.choice(NAMES), random_type(rng))], [], [], []],
    )
    if rng.random() < 0.3:
        query = query[:10] + b"\x00\x01" + query[12:] + opt_record(rng)
    key = rng.choice(SIGNERS)
    trick = rng.randrange(7)
    if trick == 0:
        # A record after the TSIG record.
        signed = sign(query, key)
        arcount = int.from_bytes(signed[10:12], "big") + 1
        return signed[:10] + arcount.to_bytes(2, "big") + signed[12:] + random_record(rng)
    if trick == 1:
        # The TSIG record in the answer section.
        signed = sign(query, key)
        tsig_start = len(query)
        return (
            signed[:6]
            + b"\x00\x01"
            + signed[8:10]
            + query[10:12]
            + signed[12:tsig_start]
            + signed[tsig_start:]
        )
    if trick == 2:
        twice = sign(sign(query, key), rng.choice(SIGNERS))
        return twice
    if trick == 3:
        garbage = rng.randbytes(rng.randrange(40))
        arcount = int.from_bytes(query[10:12], "big") + 1
        return (
            query[:10]
            + arcount.to_bytes(2, "big")
            + query[12:]
            + record(
                key.name.to_wire(), TSIG, rng.choice((ANYCLASS, IN)), rng.choice((0, 300)), garbage
            )
        )
    if trick == 4:
        # Well-formed TSIG fields with odd values: unknown algorithm, MAC sizes, other data.
        algorithm = rng.choice(
            (key.algorithm, dns.name.from_text("hmac-nope."), dns.tsig.GSS_TSIG, dns.name.root)
        )
        mac = rng.randbytes(rng.choice((0, 1, 10, 16, 32, 64, 200)))
        other = rng.randbytes(rng.choice((0, 6, 20)))
        signed_at = rng.choice((0, int(time.time()), (1 << 48) - 1))
        rdata = (
            algorithm.to_wire()
            + struct.pack(
                "!HIHH",
                signed_at >> 32,
                signed_at & 0xFFFFFFFF,
                rng.choice((0, 300, 65535)),
                len(mac),
            )
            + mac
            + struct.pack(
                "!HHH", rng.randrange(65536), rng.choice((0, 16, 17, 18, 22, 65535)), len(other)
            )
            + other
        )
        arcount = int.from_bytes(query[10:12], "big") + 1
        return (
            query[:10]
            + arcount.to_bytes(2, "big")
            + query[12:]
            + record(key.name.to_wire(), TSIG, ANYCLASS, 0, rdata)
        )
    if trick == 5:
        # Signed, then a byte of the signed part changed.
        signed = bytearray(sign(query, key))
        index = rng.randrange(12, len(query)) if len(query) > 12 else 2
        signed[index] ^= 1 << rng.randrange(8)
        return bytes(signed)
    # Signed, then the section counts changed.
    signed = bytearray(sign(query, key))
    index = 4 + 2 * rng.randrange(4)
    signed[index : index + 2] = rng.choice((0, 2, 0xFFFF)).to_bytes(2, "big")
    return bytes(signed)


def gen_response(rng: random.Random) -> bytes:
    """A response sent to the server (QR=1): dropped."""
    wire = bytearray(gen_query(rng))
    if len(wire) >= 12:
        wire[2] |= 0x80
    return bytes(wire)


def gen_transfer(rng: random.Random) -> bytes:
    """AXFR and IXFR (with or without a SOA, any serial), signed or not."""
    rdtype = rng.choice((AXFR, IXFR, IXFR))
    zone = rng.choice(ZONE_NAMES)
    authority = []
    if rdtype == IXFR and rng.random() < 0.85:
        rdclass = IN if rng.random() < 0.9 else rng.choice(CLASSES)
        owner = zone if rng.random() < 0.9 else random_name(rng)
        authority.append(record(owner, SOA, rdclass, 0, soa_rdata(rng.choice(SERIALS))))
        if rng.random() < 0.1:
            authority.append(record(owner, SOA, rdclass, 0, soa_rdata(rng.choice(SERIALS))))
        if rng.random() < 0.05:
            authority[0] = record(owner, SOA, rdclass, 0, rng.randbytes(rng.randrange(30)))
    additional = [opt_record(rng, version=0)] if rng.random() < 0.2 else []
    flags = (dns.opcode.QUERY << 11) | (RD if rng.random() < 0.2 else 0)
    wire = message(
        rng.randrange(65536),
        flags,
        [[question(zone, rdtype, random_class(rng))], [], authority, additional],
    )
    if rng.random() < 0.6:
        key = TRANSFER_KEY if rng.random() < 0.7 else rng.choice(SIGNERS)
        return sign(wire, key)
    return wire


def gen_update(rng: random.Random) -> bytes:
    """UPDATE with a zone section and garbage prerequisite/update sections."""
    zone = rng.choice(ZONE_NAMES)
    zone_type = SOA if rng.random() < 0.9 else random_type(rng)
    zones = [question(zone, zone_type, random_class(rng))]
    if rng.random() < 0.05:
        zones.append(question(rng.choice(NAMES), SOA))
    prerequisites = []
    updates = []
    for _ in range(rng.choice((0, 1, 2, 4))):
        owner = random_name(rng)
        rdtype = random_type(rng)
        choice = rng.randrange(4)
        if choice == 0:  # add
            updates.append(record(owner, rdtype, IN, 300, random_rdata(rng, rdtype)))
        elif choice == 1:  # delete an RRset / all RRsets
            updates.append(record(owner, rng.choice((rdtype, ANY)), ANYCLASS, 0, b""))
        elif choice == 2:  # delete an RR
            updates.append(record(owner, rdtype, NONE, 0, random_rdata(rng, rdtype)))
        else:
            updates.append(random_record(rng))
        if rng.random() < 0.3:
            prerequisites.append(
                record(owner, rng.choice((rdtype, ANY)), rng.choice((ANYCLASS, NONE, IN)), 0, b"")
            )
    additional = [opt_record(rng, version=0)] if rng.random() < 0.1 else []
    wire = message(
        rng.randrange(65536), dns.opcode.UPDATE << 11, [zones, prerequisites, updates, additional]
    )
    if rng.random() < 0.7:
        key = UPDATE_KEY if rng.random() < 0.7 else rng.choice(SIGNERS)
        return sign(wire, key)
    return wire


def gen_notify(rng: random.Random) -> bytes:
    zone = rng.choice(ZONE_NAMES) if rng.random() < 0.8 else random_name(rng)
    answers = []
    if rng.random() < 0.7:
        answers.append(record(zone, SOA, IN, 0, soa_rdata(rng.choice(SERIALS))))
    if rng.random() < 0.2:
        answers.append(random_record(rng))
    questions = [question(zone, SOA if rng.random() < 0.9 else random_type(rng), random_class(rng))]
    if rng.random() < 0.1:
        questions = questions * rng.choice((0, 2))
    flags = (dns.opcode.NOTIFY << 11) | (AA if rng.random() < 0.8 else 0)
    wire = message(rng.randrange(65536), flags, [questions, answers, [], []])
    if rng.random() < 0.5:
        key = NOTIFY_KEY if rng.random() < 0.6 else rng.choice(SIGNERS)
        return sign(wire, key)
    return wire


# ---------------------------------------------------------------------------
# A corpus of valid messages built with dnspython, and mutations of it


def build_corpus() -> list[bytes]:
    """Valid requests of every kind (signed ones carry the current time)."""
    corpus: list[bytes] = []
    names = ["example.", "ns1.example.", "www.example.", "x.wild.example.", "sub.example.",
             "nope.example.", "example.org.", "nested.example.", "test."]  # fmt: skip
    for qname in names:
        for qtype in ("A", "AAAA", "MX", "SOA", "NS", "TXT", "ANY", "CNAME", "DS", "SRV"):
            corpus.append(dns.message.make_query(qname, qtype).to_wire())
        for payload in (512, 1232, 4096):
            query = dns.message.make_query(
                qname,
                "A",
                use_edns=0,
                payload=payload,
                want_dnssec=payload == 4096,
                options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")],
            )
            corpus.append(query.to_wire())
    for qtype in ("MAILA", "TKEY", "AXFR", "IXFR"):
        corpus.append(dns.message.make_query("example.", qtype).to_wire())
    corpus.append(dns.message.make_query("example.", "SOA", rdclass="CH").to_wire())
    corpus.append(dns.message.make_query("example.", "A", use_edns=1).to_wire())
    for key in SIGNERS:
        for qname, qtype in (("ns1.example.", "A"), ("example.", "SOA"), ("example.", "AXFR")):
            query = dns.message.make_query(qname, qtype)
            query.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
            corpus.append(query.to_wire())
    for serial in SERIALS:
        query = dns.message.make_query("example.", "IXFR")
        query.authority.append(
            dns.rrset.from_text(
                "example.", 0, "IN", "SOA", f"ns1.example. hostmaster.example. {serial} 1 1 1 1"
            )
        )
        corpus.append(query.to_wire())
        query.use_tsig(
            {TRANSFER_KEY.name: TRANSFER_KEY}, TRANSFER_KEY.name, algorithm=TRANSFER_KEY.algorithm
        )
        corpus.append(query.to_wire())
    for zone, key in (("example.", NOTIFY_KEY), ("example.org.", NOTIFY_KEY), ("example.", None)):
        notify = dns.message.make_query(zone, "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        notify.flags |= dns.flags.AA
        notify.answer.append(
            dns.rrset.from_text(zone, 0, "IN", "SOA", "ns1.example. hostmaster.example. 5 1 1 1 1")
        )
        if key is not None:
            notify.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
        corpus.append(notify.to_wire())
    for key in (UPDATE_KEY, TRANSFER_KEY, STRANGER_KEY, None):
        update = dns.update.UpdateMessage("example.")
        update.present("mail.example.", "A")
        update.absent("new.example.")
        update.add("new.example.", 300, "A", "192.0.2.77")
        update.delete("www.example.")
        update.replace("mail.example.", 600, "A", "192.0.2.26")
        update.delete("ns1.example.", "AAAA", "2001:db8::53")
        if key is not None:
            update.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
        corpus.append(update.to_wire())
    # Responses: mutated, their QR bit may be cleared.
    served = served_variants()[0]
    for wire in list(corpus[:20]):
        reply = respond(served, wire, tcp=False, now=int(time.time()))
        if reply is not None and reply.wire:
            corpus.append(reply.wire)
    return corpus


def mutate(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """A few random edits: bit flips, interesting bytes, insertions, deletions,
    duplications, splices with another message, truncation, count changes, pointers."""
    wire = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        op = rng.randrange(10)
        size = len(wire)
        if op == 0 and size:
            wire[rng.randrange(size)] ^= 1 << rng.randrange(8)
        elif op == 1 and size:
            wire[rng.randrange(size)] = rng.choice(BYTES)
        elif op == 2:
            at = rng.randrange(size + 1)
            wire[at:at] = rng.randbytes(rng.choice((1, 2, 4, 16)))
        elif op == 3 and size:
            at = rng.randrange(size)
            del wire[at : at + rng.choice((1, 2, 4, 16))]
        elif op == 4 and size:
            at = rng.randrange(size)
            chunk = wire[at : at + rng.randrange(1, 32)]
            to = rng.randrange(size + 1)
            wire[to:to] = chunk
        elif op == 5:
            other = rng.choice(corpus)
            cut = rng.randrange(size + 1)
            wire = wire[:cut] + other[rng.randrange(len(other) + 1) :]
        elif op == 6 and size:
            del wire[rng.randrange(size) :]
        elif op == 7 and size >= 12:
            index = 4 + 2 * rng.randrange(4)
            count = int.from_bytes(wire[index : index + 2], "big")
            new = rng.choice((0, count + 1, max(count - 1, 0), 0xFFFF))
            wire[index : index + 2] = (new & 0xFFFF).to_bytes(2, "big")
        elif op == 8 and size > 13:
            at = rng.randrange(12, size - 1)
            wire[at : at + 2] = (0xC000 | rng.randrange(max(size, 13))).to_bytes(2, "big")
        elif op == 9 and size >= 4:
            # Flip the header fields that steer dispatch: opcode, flags.
            wire[2] = rng.randrange(256) & 0x7F
    if len(wire) >= 3 and rng.random() < 0.9:
        wire[2] &= 0x7F  # mostly a request, so the core gets to work on it
    return bytes(wire)


Generator = Callable[[random.Random], bytes]

GENERATORS: dict[str, Generator] = {
    "random": gen_random_bytes,
    "short": gen_short,
    "header": gen_header_garbage,
    "query": gen_query,
    "many-questions": gen_many_questions,
    "long-signed": gen_long_signed,
    "hostile-name": gen_hostile_name,
    "absurd-counts": gen_absurd_counts,
    "opt": gen_opt_abuse,
    "tsig": gen_tsig_abuse,
    "response": gen_response,
    "transfer": gen_transfer,
    "update": gen_update,
    "notify": gen_notify,
}
# How often each kind is drawn by Packets (the rest: mutations of the corpus).
WEIGHTS = {
    "random": 4,
    "short": 1,
    "header": 3,
    "query": 12,
    "many-questions": 2,
    "long-signed": 2,
    "hostile-name": 5,
    "absurd-counts": 3,
    "opt": 5,
    "tsig": 5,
    "response": 2,
    "transfer": 5,
    "update": 5,
    "notify": 4,
}
MUTATION_WEIGHT = 40


@dataclass
class Packets:
    """An endless mix of generated and mutated requests, each with its transport."""

    rng: random.Random
    corpus: list[bytes] = field(default_factory=build_corpus)

    def __post_init__(self) -> None:
        self.kinds = [*WEIGHTS, "mutation"]
        self.weights = [*WEIGHTS.values(), MUTATION_WEIGHT]

    def next(self) -> tuple[str, bytes, bool]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "mutation":
            wire = mutate(self.rng, self.rng.choice(self.corpus), self.corpus)
        else:
            wire = GENERATORS[kind](self.rng)
        return kind, wire, self.rng.random() < 0.3

    def __iter__(self) -> Iterator[tuple[str, bytes, bool]]:
        while True:
            yield self.next()


# ---------------------------------------------------------------------------
# The properties


class BadReply(AssertionError):
    """An answer, but not as it must be: kind says what is wrong, detail the particulars."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def udp_limit_of(wire: bytes) -> int:
    """The most a UDP response to wire may take (the header error of an unparsable one is
    12 bytes)."""
    try:
        query = dns.message.from_wire(wire, keyring=False)
    except Exception:
        return 512
    if query.edns < 0:
        return 512
    return max(512, min(query.payload, 1232))


def _request_mac(wire: bytes) -> bytes:
    return dns.message.from_wire(wire, keyring=False).tsig[0].mac


def check_response_wire(request: bytes, wire: bytes, *, tcp: bool, transfer: bool = False) -> None:
    if len(wire) > 65535:
        raise BadReply("oversized response", f"{len(wire)} bytes")
    if not tcp and not transfer and len(wire) > 512:
        limit = udp_limit_of(request)
        if len(wire) > limit:
            raise BadReply("UDP response over the limit", f"{len(wire)} bytes, limit {limit}")
    try:
        response = dns.message.from_wire(wire, keyring=False)
    except Exception as error:
        raise BadReply(
            f"unparsable response ({type(error).__name__})", f"{wire.hex()}: {error}"
        ) from error
    if not response.flags & dns.flags.QR:
        raise BadReply("response without QR")
    if response.id != int.from_bytes(request[:2], "big"):
        raise BadReply("wrong response ID", f"{response.id} for request ID {request[:2].hex()}")


def check_reply(served: Served, request: bytes, tcp: bool, reply: Reply | None) -> None:
    """Raise BadReply unless reply is a proper outcome of respond(served, request)."""
    if reply is None:
        if len(request) >= 12 and not request[2] & 0x80:
            raise BadReply("a request with a readable header was dropped")
        return
    if len(request) < 12 or request[2] & 0x80:
        raise BadReply("a response or a fragment was answered")
    keyring = {key.name: key for key in served.keyring.values()}
    if reply.transfer is not None:
        if reply.wire:
            raise BadReply("a transfer with a wire of its own")
        messages = list(reply.transfer.messages)
        if not messages:
            raise BadReply("an empty transfer")
        for wire in messages:
            check_response_wire(request, wire, tcp=tcp, transfer=True)
        if reply.authenticated:
            ctx, mac = None, _request_mac(request)
            for wire in messages:
                parsed = dns.message.from_wire(
                    wire, keyring=keyring, request_mac=mac, xfr=True, tsig_ctx=ctx, multi=True
                )
                ctx = parsed.tsig_ctx
        return
    if isinstance(reply.event, UpdateReceived):
        if reply.wire:
            raise BadReply("an UPDATE to apply with an answer already")
        wire = reply.event.request.reply(Answer())
    else:
        wire = reply.wire
    check_response_wire(request, wire, tcp=tcp)
    if reply.authenticated:
        try:
            dns.message.from_wire(wire, keyring=keyring, request_mac=_request_mac(request))
        except Exception as error:
            raise BadReply("answer to a signed request does not verify", repr(error)) from error


# ---------------------------------------------------------------------------
# The shell, in-process


class RecordingDatagramTransport:
    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.written.append((datagram, addr))


class Server:
    """The listeners' protocols around respond(), as the primary wires them (an UPDATE
    to apply is answered at once, as if committed)."""

    def __init__(self, served: Served, steps: task.Clock, rrl: bool = False) -> None:
        self.served = served
        self.steps = steps
        self.core_exceptions: list[tuple[bytes, BaseException]] = []

        def handle(wire: bytes, tcp: bool, peer: tuple[str, int]) -> Reply | Later | None:
            try:
                reply = respond(self.served, wire, tcp=tcp, now=int(time.time()), peer=peer[0])
            except Exception as error:
                self.core_exceptions.append((wire, error))
                raise
            if reply is not None and isinstance(reply.event, UpdateReceived):
                return Later(defer.succeed(reply.event.request.reply(Answer())))
            return reply

        self.dispatcher = RequestDispatcher(
            handle, ResponseCache(), authority=GitAuthority(self.served)
        )
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.udp_transport = RecordingDatagramTransport()
        if rrl:
            self.limiter: RateLimiter | None = RateLimiter(2, slip=2)
            self.udp: DNSDatagramProtocol = RateLimitedDatagramProtocol(
                self.dispatcher, self.limiter, self.clock
            )
        else:
            self.limiter = None
            self.udp = DNSDatagramProtocol(self.dispatcher)
        self.udp.makeConnection(self.udp_transport)
        self.streams = DNSStreamFactory(self.dispatcher, idle_timeout=10.0)

    def datagram(self, wire: bytes, addr: tuple[str, int] = (PEER, 5353)) -> list[bytes]:
        before = len(self.udp_transport.written)
        self.udp.datagramReceived(wire, addr)
        return [datagram for datagram, _ in self.udp_transport.written[before:]]

    def connect(self) -> tuple[DNSStreamProtocol, StringTransport]:
        transport = StringTransport(peerAddress=IPv4Address("TCP", PEER, 5353))
        connection = self.streams.buildProtocol(transport.getPeer())
        connection.callLater = self.clock.callLater  # type: ignore[method-assign]
        connection.makeConnection(transport)
        return connection, transport

    def run_transfers(self) -> None:
        """Run the transfers under way to their end (see stepwise_cooperation)."""
        for _ in range(100_000):
            if not self.steps.getDelayedCalls():
                return
            self.steps.advance(0)
        raise AssertionError("a transfer never finished")


def stepwise_cooperation() -> tuple[task.Clock, Callable[[Iterator[None]], task.CooperativeTask]]:
    """A clock and a replacement for task.cooperate that runs on it, so that the
    transfers a DNSStreamProtocol streams advance only when the clock does."""
    steps = task.Clock()
    cooperator = task.Cooperator(scheduler=lambda step: steps.callLater(0, step))
    return steps, cooperator.cooperate


def frames(stream: bytes) -> list[bytes]:
    """The length-prefixed messages of a TCP byte stream (all of them: no remainder)."""
    messages = []
    while stream:
        if len(stream) < 2:
            raise BadReply("stray bytes in the TCP stream", str(len(stream)))
        length = int.from_bytes(stream[:2], "big")
        if len(stream) < 2 + length:
            raise BadReply("a truncated frame in the TCP stream")
        messages.append(stream[2 : 2 + length])
        stream = stream[2 + length :]
    return messages


def framed(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


def bug_events(events: Sequence[LogEvent]) -> list[str]:
    """Failures logged: 'Bug:' from the dispatcher, or a failed transfer."""
    return [
        f"{event.get('log_format')}: {event['log_failure'].getTraceback()}"
        for event in events
        if "log_failure" in event
    ]


def known_answer(wire: bytes) -> None:
    """wire answers ns1.example./A with its address."""
    response = dns.message.from_wire(wire)
    assert response.rcode() == dns.rcode.NOERROR, response
    assert response.answer[0].to_text() == "ns1.example. 3600 IN A 192.0.2.53", response


# ---------------------------------------------------------------------------
# Tests

SERVED = served_variants()
CORPUS = build_corpus()
# Deterministic (the same examples every run) and without shrinking: a seed does not
# shrink usefully, and a failure names its input in hex anyway.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Seeded generators: drawn by hypothesis, but each draws from random.Random as the
# benchmark does (a HypothesisRandom costs ten times as much per call).
randoms = st.integers(0, 2**64 - 1).map(random.Random)
variants = st.sampled_from(SERVED)


def _respond(served: Served, wire: bytes, tcp: bool) -> None:
    try:
        reply = respond(served, wire, tcp=tcp, now=int(time.time()), peer=PEER)
    except Exception as error:
        raise AssertionError(f"respond(tcp={tcp}) raised {error!r} on {wire.hex()}") from error
    try:
        check_reply(served, wire, tcp, reply)
    except BadReply as error:
        raise AssertionError(f"{error} (request {wire.hex()}, tcp={tcp})") from error


class RespondFuzzTests(SynchronousTestCase):
    """respond() on generated and mutated requests."""

    @FUZZ
    @given(st.binary(max_size=1500), st.booleans(), variants)
    def test_random_bytes(self, wire: bytes, tcp: bool, served: Served) -> None:
        _respond(served, wire, tcp)

    @settings(FUZZ, max_examples=1500)
    @given(randoms, st.sampled_from(sorted(GENERATORS)), st.booleans(), variants)
    def test_generated(self, rng: random.Random, kind: str, tcp: bool, served: Served) -> None:
        _respond(served, GENERATORS[kind](rng), tcp)

    @settings(FUZZ, max_examples=1500)
    @given(randoms, st.sampled_from(CORPUS), st.booleans(), variants)
    def test_mutated(self, rng: random.Random, seed: bytes, tcp: bool, served: Served) -> None:
        _respond(served, mutate(rng, seed, CORPUS), tcp)

    def test_corpus_is_valid_and_answered(self) -> None:
        for wire in CORPUS:
            dns.message.from_wire(wire, keyring=False)
            for tcp in (False, True):
                _respond(SERVED[0], wire, tcp)

    # Regressions: the smallest inputs found so far, each a failure of its own.

    def test_many_questions_over_udp(self) -> None:
        """Eleven uncompressible questions (699 bytes): the FORMERR echoing them must still
        fit in 512 bytes."""
        questions = [question(NS1_NAME, A)] + [
            question(b"=" + f"{i}".encode() + b"x" * 60 + b"\x00", A) for i in range(10)
        ]
        wire = message(0x8AAB, RD, [questions, [], [], []])
        _respond(SERVED[0], wire, tcp=False)

    def test_long_name_signed_by_long_key_over_udp(self) -> None:
        """A 255-byte name in a query with EDNS (payload 512) signed by a key with a
        200-byte name: the room reserved for the OPT and TSIG records plus the question
        exceed 512 bytes."""
        name = _longest_name(random.Random(1))
        opt = record(b"\x00", OPT, 512, 0, b"")
        wire = sign(message(0x1234, 0, [[question(name, A)], [], [], [opt]]), LONG_KEY)
        _respond(SERVED[0], wire, tcp=False)


class HandlerFuzzTests(SynchronousTestCase):
    """The UDP and TCP protocols fed hostile traffic in-process."""

    def setUp(self) -> None:
        self.steps, cooperate = stepwise_cooperation()
        self.patch(task, "cooperate", cooperate)

    def assertNoBug(self, server: Server, events: Sequence[LogEvent]) -> None:
        """No exception got out of the core (the dispatcher logs 'Bug:') or a transfer."""
        # Reported here, with the input that caused it, rather than by trial.
        self.flushLoggedErrors()
        if server.core_exceptions:
            wire, error = server.core_exceptions[0]
            self.fail(f"the core raised {error!r} on {wire.hex()}")
        self.assertEqual(bug_events(events), [])

    def assertGoodDatagram(self, server: Server, request: bytes, datagram: bytes) -> None:
        try:
            check_response_wire(request, datagram, tcp=False)
        except BadReply as error:
            limited = " (rate-limited)" if server.limiter else ""
            self.fail(f"UDP handler{limited}: {error} (request {request.hex()})")

    def check_datagrams(self, server: Server, packets: Sequence[bytes]) -> None:
        for wire in packets:
            server.clock.advance(0.01)
            for datagram in server.datagram(wire, (f"192.0.2.{wire[0] if wire else 0}", 5353)):
                self.assertGoodDatagram(server, wire, datagram)
        # Still answering, from an address the rate limiter has not seen.
        query = dns.message.make_query("ns1.example.", "A")
        answers = server.datagram(query.to_wire(), ("198.51.100.7", 53))
        self.assertEqual(len(answers), 1)
        known_answer(answers[0])
        self.assertEqual(dns.message.from_wire(answers[0]).id, query.id)

    @settings(FUZZ, max_examples=120)
    @given(randoms, st.booleans(), variants)
    def test_datagrams(self, rng: random.Random, rrl: bool, served: Served) -> None:
        server = Server(served, self.steps, rrl=rrl)
        packets = Packets(rng, CORPUS)
        with capturedLogs() as events:
            self.check_datagrams(server, [packets.next()[1] for _ in range(20)])
        self.assertNoBug(server, events)

    @settings(FUZZ, max_examples=60)
    @given(randoms, variants)
    def test_rate_limited_repeats(self, rng: random.Random, served: Served) -> None:
        """The same requests again and again from one address: the slipped (truncated)
        answers too must be well-formed."""
        server = Server(served, self.steps, rrl=True)
        packets = Packets(rng, CORPUS)
        chosen = [packets.next()[1] for _ in range(5)]
        with capturedLogs() as events:
            for wire in chosen * 4:
                for datagram in server.datagram(wire):
                    self.assertGoodDatagram(server, wire, datagram)
        self.assertNoBug(server, events)

    @settings(FUZZ, max_examples=120)
    @given(randoms, variants, st.lists(st.integers(1, 200), min_size=1, max_size=30))
    def test_stream_of_framed_messages(
        self, rng: random.Random, served: Served, cuts: list[int]
    ) -> None:
        """Framed requests of every kind, in chunks split anywhere, then a valid query on
        the same connection: every answer is a well-formed frame, the last one right."""
        server = Server(served, self.steps)
        packets = Packets(rng, CORPUS)
        requests = [packets.next()[1][:65535] for _ in range(8)]
        query = dns.message.make_query("ns1.example.", "A")
        stream = b"".join(framed(wire) for wire in requests) + framed(query.to_wire())
        connection, transport = server.connect()
        with capturedLogs() as events:
            start = 0
            for cut in cuts:
                connection.dataReceived(stream[start : start + cut])
                start += cut
                server.run_transfers()
            connection.dataReceived(stream[start:])
            server.run_transfers()
            connection.connectionLost(None)
        self.assertNoBug(server, events)
        answers = frames(transport.value())
        ids = {int.from_bytes(wire[:2], "big") for wire in requests if len(wire) >= 2}
        for wire in answers[:-1]:
            response = dns.message.from_wire(wire, keyring=False)
            self.assertTrue(response.flags & dns.flags.QR)
            self.assertIn(response.id, ids)
        self.assertTrue(answers)
        known_answer(answers[-1])

    @settings(FUZZ, max_examples=100)
    @given(st.lists(st.binary(max_size=300), max_size=10))
    def test_stream_of_garbage(self, chunks: list[bytes]) -> None:
        """Arbitrary bytes on one connection; a new connection is served as ever."""
        server = Server(SERVED[0], self.steps)
        connection, _ = server.connect()
        with capturedLogs() as events:
            for chunk in chunks:
                connection.dataReceived(chunk)
                server.run_transfers()
            connection.connectionLost(None)
            fresh, transport = server.connect()
            fresh.dataReceived(framed(dns.message.make_query("ns1.example.", "A").to_wire()))
            fresh.connectionLost(None)
        self.assertNoBug(server, events)
        known_answer(frames(transport.value())[-1])

    # Regressions.

    def test_slipped_answer_to_two_questions(self) -> None:
        """A NOTIFY with two questions, again and again: its FORMERR slipped by the rate
        limiter keeps QDCOUNT 2 but only the first question."""
        wire = bytes.fromhex(
            "15ce20000002000000000000076578616d706c650000060001076578616d706c650000060001"
        )
        server = Server(SERVED[0], self.steps, rrl=True)
        for _ in range(6):
            for datagram in server.datagram(wire):
                self.assertGoodDatagram(server, wire, datagram)

    def test_slipped_answer_to_compressed_question(self) -> None:
        """A question whose name is a pointer into the header (offset 4: the root), with
        EDNS: the slipped answer is cut where the request's question ends, measured
        uncompressed (193 bytes on), so it keeps the OPT record with ARCOUNT 0."""
        wire = bytes.fromhex("424200000001000000000001c0040001000100002904d0000000000000")
        server = Server(SERVED[0], self.steps, rrl=True)
        for _ in range(6):
            for datagram in server.datagram(wire):
                self.assertGoodDatagram(server, wire, datagram)

    def test_slipped_answer_with_edns_and_no_question(self) -> None:
        """No question, an OPT record: the slipped FORMERR keeps 5 bytes of the OPT
        record and ARCOUNT 0 (trailing junk)."""
        wire = header(0x3CA0, 0, 0, 0, 0, 1) + record(b"\x00", OPT, 4096, 0, b"")
        server = Server(SERVED[0], self.steps, rrl=True)
        for _ in range(6):
            for datagram in server.datagram(wire):
                self.assertGoodDatagram(server, wire, datagram)
