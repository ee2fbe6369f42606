"""Outgoing zone transfers (RFC 5936): a zone as a stream of messages, SOA first and last.

Each message is signed when the request was (RFC 8945 5.3.1: every message of the
stream, the MAC chained from the previous one).
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.renderer
import dns.rrset

from gitdns.tsig import Signature, add_signature
from gitdns.zones import Zone

# Below the 65535 maximum so that a TSIG record always fits behind the records.
MESSAGE_SIZE = 64000


def _records(zone: Zone) -> Iterator[dns.rrset.RRset]:
    yield zone.soa
    for rrset in zone.rrsets():
        if rrset is not zone.soa:
            yield rrset
    yield zone.soa


def axfr_messages(
    zone: Zone, query: dns.message.Message, signature: Signature | None, now: int
) -> Iterator[bytes]:
    """The AXFR answer to query as wire messages; the question goes in the first only."""
    flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
    ctx = None
    reserve = signature.reserve() if signature else 0

    def start(with_question: bool) -> dns.renderer.Renderer:
        renderer = dns.renderer.Renderer(query.id, flags, MESSAGE_SIZE)
        renderer.reserve(reserve)
        if with_question:
            question = query.question[0]
            renderer.add_question(question.name, question.rdtype, question.rdclass)
        return renderer

    def finish(renderer: dns.renderer.Renderer) -> bytes:
        nonlocal ctx
        renderer.release_reserved()
        renderer.write_header()
        if signature is not None:
            ctx = add_signature(renderer, signature, now, ctx)
        return renderer.get_wire()

    renderer = start(with_question=True)
    for rrset in _records(zone):
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)
            continue
        except dns.exception.TooBig:
            pass
        if renderer.counts[dns.renderer.ANSWER]:
            yield finish(renderer)
            renderer = start(with_question=False)
            try:
                renderer.add_rrset(dns.renderer.ANSWER, rrset)
                continue
            except dns.exception.TooBig:
                pass
        # An RRset larger than a message goes record by record.
        for rdata in rrset:
            single = dns.rrset.from_rdata(rrset.name, rrset.ttl, rdata)
            try:
                renderer.add_rrset(dns.renderer.ANSWER, single)
            except dns.exception.TooBig:
                yield finish(renderer)
                renderer = start(with_question=False)
                renderer.add_rrset(dns.renderer.ANSWER, single)
    yield finish(renderer)
