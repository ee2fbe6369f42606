"""GitAuthority: the zones currently served, swapped atomically, with Twisted Names' face.

It implements IResolver (through ResolverBase) so that Twisted code can query the store
in-process; the listeners use the same ZoneSet through the pure core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.message
import dns.name
import dns.rcode
from twisted.internet import defer
from twisted.names import common, error
from twisted.names import dns as tdns

from gitdns.respond import Served, respond
from gitdns.zones import LoadResult

ChangeListener = Callable[[LoadResult, Served], None]


class GitAuthority(common.ResolverBase):
    def __init__(self, served: Served | None = None) -> None:
        super().__init__()
        self.served = served or Served()
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call listener(result, previously served) after every swap."""
        self._listeners.append(listener)

    def swap(self, served: Served, result: LoadResult) -> None:
        """Serve served from now on: one reference assignment, so atomic."""
        previous, self.served = self.served, served
        for listener in self._listeners:
            listener(result, previous)

    def refine(self, served: Served) -> None:
        """Serve served from now on, which answers as what is served does (with more
        prerendered answers, say): nobody is told."""
        self.served = served

    def _lookup(
        self, name: bytes, cls: int, type: int, timeout: object
    ) -> defer.Deferred[tuple[list, list, list]]:
        query = dns.message.make_query(dns.name.from_text(name.decode("ascii")), type, cls)
        reply = respond(self.served, query.to_wire(), tcp=True, now=int(time.time()))
        assert reply is not None
        message = tdns.Message()
        message.fromStr(reply.wire)
        if message.rCode == tdns.ENAME:
            return defer.fail(error.AuthoritativeDomainError(name))
        if message.rCode == tdns.EREFUSED:
            return defer.fail(error.DNSQueryRefusedError(name))
        if message.rCode != tdns.OK:
            return defer.fail(error.DNSServerError(name))
        return defer.succeed((message.answers, message.authority, message.additional))
