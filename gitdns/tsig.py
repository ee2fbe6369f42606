"""Transaction signatures (RFC 8945): checking requests, signing responses, via dnspython.

dnspython validates the MAC and the time window (with its own clock, time.time());
this module decides what each failure is answered with:

- unknown key or algorithm mismatch: NOTAUTH + BADKEY, unsigned;
- wrong MAC: NOTAUTH + BADSIG, unsigned;
- outside the fudge window: NOTAUTH + BADTIME, signed, with our time;
- MAC truncated below the RFC minimum: FORMERR; truncated at all: BADTRUNC (our
  policy is the full MAC, as BIND's default).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.renderer
import dns.rrset
import dns.tsig

FUDGE = 300
# A TSIG record's type, class ANY and TTL 0; class and TTL are under the MAC too.
_TSIG_RR = struct.pack("!HHI", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0)
_ANY_CLASS_ZERO_TTL = _TSIG_RR[2:]

Keyring = Mapping[dns.name.Name, dns.tsig.Key]


@dataclass(frozen=True)
class Signature:
    """How a request was signed, and so how its response must be."""

    keyname: dns.name.Name
    algorithm: dns.name.Name
    # The verified key, or None when the response goes unsigned (BADKEY, BADSIG).
    key: dns.tsig.Key | None
    request_mac: bytes
    original_id: int
    # TSIG error (RFC 8945 5.3): 0 when the request verified.
    error: int = 0
    rcode: int = dns.rcode.NOERROR

    @property
    def ok(self) -> bool:
        return self.error == 0 and self.rcode == dns.rcode.NOERROR

    def reserve(self) -> int:
        """Bytes the TSIG record of the response takes at most."""
        other = 6 if self.error == dns.rcode.BADTIME else 0
        mac = dns.tsig.mac_sizes.get(self.algorithm, 64) if self.key else 0
        return len(self.keyname.to_wire()) + 10 + len(self.algorithm.to_wire()) + 16 + mac + other


def read(wire: bytes, keyring: Keyring) -> tuple[dns.message.Message, bool]:
    """wire parsed, and whether its TSIG was verified with our key on the way.

    A signed request with a key of ours is parsed once, verified while parsed; one that
    fails (or any other trouble) is parsed again without verification, and check()
    finds out what is wrong.
    """

    def ours(message: dns.message.Message, keyname: dns.name.Name) -> dns.tsig.Key | bool:
        return keyring.get(keyname) or False  # False: parse on, unverified

    try:
        query = dns.message.from_wire(wire, keyring=ours)
    except dns.exception.DNSException:
        return dns.message.from_wire(wire, keyring=False), False
    return query, query.had_tsig and isinstance(query.keyring, dns.tsig.Key)


def check(
    wire: bytes, query: dns.message.Message, keyring: Keyring, verified: bool = False
) -> Signature:
    """Verify the TSIG of query (parsed from wire; verified already when read() says so)."""
    rdata = query.tsig[0]
    keyname = query.tsig.name
    base = Signature(keyname, rdata.algorithm, None, rdata.mac, rdata.original_id)
    key = keyring.get(keyname)
    if key is None or key.algorithm != rdata.algorithm:
        return replace(base, error=dns.rcode.BADKEY, rcode=dns.rcode.NOTAUTH)
    full = dns.tsig.mac_sizes.get(rdata.algorithm)
    if full is None:
        return replace(base, error=dns.rcode.BADKEY, rcode=dns.rcode.NOTAUTH)
    if len(rdata.mac) < max(10, full // 2):
        # RFC 8945 5.2.2.1: too short to mean anything.
        return replace(base, rcode=dns.rcode.FORMERR)
    signed = replace(base, key=key)
    if len(rdata.mac) < full:
        return replace(signed, error=dns.rcode.BADTRUNC, rcode=dns.rcode.NOTAUTH)
    if verified:
        return signed
    try:
        dns.message.from_wire(wire, keyring={keyname: key})
    except dns.tsig.BadTime:
        return replace(signed, error=dns.rcode.BADTIME, rcode=dns.rcode.NOTAUTH)
    except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadAlgorithm):
        return replace(base, error=dns.rcode.BADSIG, rcode=dns.rcode.NOTAUTH)
    except dns.exception.DNSException:
        return replace(base, rcode=dns.rcode.FORMERR)
    return signed


def _other_data(signature: Signature, now: int) -> bytes:
    """A BADTIME answer tells our time (RFC 8945 5.2.3); others carry nothing."""
    if signature.error == dns.rcode.BADTIME:
        return struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF)
    return b""


def signed(wire: bytes, signature: Signature, now: int) -> bytes:
    """wire, one whole response, with the TSIG record of a verified key (RFC 8945 4.3).

    The MAC is dnspython's (dns.tsig.get_context), over the same bytes add_signature()
    has it sign; the record is written here, not through dns.renderer, which builds and
    replaces rdata objects for it: that took most of an UPDATE's answer time. The key
    name is written uncompressed, where dns.renderer may compress it.
    """
    key = signature.key
    if key is None:
        raise ValueError("an unverified request's answer is not signed")
    other = _other_data(signature, now)
    signed_at = struct.pack("!HIH", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF, FUDGE)
    error = struct.pack("!HH", signature.error, len(other)) + other
    original_id = struct.pack("!H", signature.original_id)
    context = dns.tsig.get_context(key)
    if signature.request_mac:
        context.update(struct.pack("!H", len(signature.request_mac)) + signature.request_mac)
    context.update(original_id + wire[2:])
    context.update(
        key.name.to_digestable()
        + _ANY_CLASS_ZERO_TTL
        + key.algorithm.to_digestable()
        + signed_at
        + error
    )
    mac = context.sign()
    rdata = b"".join((signature.algorithm.to_wire(), signed_at, struct.pack("!H", len(mac)), mac))
    rdata += original_id + error
    record = signature.keyname.to_wire() + _TSIG_RR + struct.pack("!H", len(rdata)) + rdata
    additional = int.from_bytes(wire[10:12], "big") + 1
    return wire[:10] + additional.to_bytes(2, "big") + wire[12:] + record


def add_signature(
    renderer: dns.renderer.Renderer, signature: Signature, now: int, ctx: object = None
) -> object:
    """Finish renderer's message with the TSIG record signature calls for.

    Returns the context to sign the next message of a multi-message answer with.
    """
    other = _other_data(signature, now)
    if signature.key is None:
        # BADKEY and BADSIG answers carry the error in an unsigned TSIG record.
        unsigned = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY,
            dns.rdatatype.TSIG,
            signature.algorithm,
            now,
            FUDGE,
            b"",
            signature.original_id,
            signature.error,
            other,
        )
        renderer.add_rrset(
            dns.renderer.ADDITIONAL, dns.rrset.from_rdata(signature.keyname, 0, unsigned)
        )
        renderer.write_header()
        return None
    return renderer.add_multi_tsig(
        ctx,
        signature.keyname,
        signature.key,
        FUDGE,
        signature.original_id,
        signature.error,
        other,
        signature.request_mac,
        signature.algorithm,
    )
