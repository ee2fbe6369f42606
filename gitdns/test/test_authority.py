"""GitAuthority through Twisted Names' IResolver interface, in-process."""

from __future__ import annotations

from twisted.internet import defer
from twisted.names import dns as tdns
from twisted.names import error
from twisted.names.common import ResolverBase
from twisted.trial.unittest import TestCase

from gitdns.authority import GitAuthority
from gitdns.respond import Served
from gitdns.test.zonedata import zoneset


class IResolverTests(TestCase):
    def setUp(self) -> None:
        self.authority = GitAuthority(Served(zoneset()))

    def test_is_a_twisted_names_resolver(self) -> None:
        self.assertIsInstance(self.authority, ResolverBase)

    @defer.inlineCallbacks
    def test_lookup_address(self):
        answers, _, _ = yield self.authority.lookupAddress(b"ns1.example")
        self.assertEqual([a.payload.dottedQuad() for a in answers], ["192.0.2.53"])

    @defer.inlineCallbacks
    def test_cname_chain_and_mail_exchange(self):
        answers, _, _ = yield self.authority.lookupAddress(b"www.example")
        self.assertEqual([a.type for a in answers], [tdns.CNAME, tdns.CNAME, tdns.A])
        answers, _, additional = yield self.authority.lookupMailExchange(b"example")
        self.assertEqual(str(answers[0].payload.name), "mail.example")
        self.assertEqual(additional[0].payload.dottedQuad(), "192.0.2.25")

    @defer.inlineCallbacks
    def test_nxdomain_and_refused(self):
        yield self.assertFailure(
            self.authority.lookupAddress(b"nope.example"), error.AuthoritativeDomainError
        )
        yield self.assertFailure(
            self.authority.lookupAddress(b"www.example.net"), error.DNSQueryRefusedError
        )
