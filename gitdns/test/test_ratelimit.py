"""Response rate limiting: accounts, rates, slip."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
from twisted.trial.unittest import SynchronousTestCase

from gitdns.ratelimit import RateLimiter, Verdict, response_kind, truncated
from gitdns.respond import Served, respond
from gitdns.test.zonedata import zoneset

ZONES = Served(zoneset())


def exchange(qname: str, qtype: str = "A") -> tuple[bytes, bytes]:
    request = dns.message.make_query(qname, qtype, use_edns=0).to_wire()
    return request, respond(ZONES, request, tcp=False, now=0).wire


class RateLimiterTests(SynchronousTestCase):
    def test_rate_is_bounded_per_network_and_slips(self) -> None:
        limiter = RateLimiter(rate=5, slip=2)
        request, response = exchange("ns1.example.")
        verdicts = [limiter.decide("192.0.2.7", request, response, 100.0) for _ in range(11)]
        self.assertEqual(verdicts[:5], [Verdict.SEND] * 5)
        self.assertEqual(verdicts[5:], [Verdict.DROP, Verdict.SLIP] * 3)
        # Another address of the same /24 shares the account; another network does not.
        self.assertEqual(limiter.decide("192.0.2.99", request, response, 100.0), Verdict.DROP)
        self.assertEqual(limiter.decide("198.51.100.1", request, response, 100.0), Verdict.SEND)
        # Credit comes back with time, one second's worth at most.
        later = [limiter.decide("192.0.2.7", request, response, 110.0) for _ in range(6)]
        self.assertEqual(later.count(Verdict.SEND), 5)

    def test_ipv6_networks_are_slash_56(self) -> None:
        limiter = RateLimiter(rate=1, slip=0)
        request, response = exchange("ns1.example.")
        self.assertEqual(limiter.decide("2001:db8:0:1::1", request, response, 0), Verdict.SEND)
        self.assertEqual(limiter.decide("2001:db8:0:2::1", request, response, 0), Verdict.DROP)
        self.assertEqual(limiter.decide("2001:db8:0:100::1", request, response, 0), Verdict.SEND)

    def test_nxdomain_floods_share_one_account(self) -> None:
        limiter = RateLimiter(rate=3, slip=0)
        verdicts = [
            limiter.decide("192.0.2.1", *exchange(f"random{i}.example."), 0) for i in range(5)
        ]
        self.assertEqual(verdicts.count(Verdict.SEND), 3)
        self.assertEqual(response_kind(*exchange("x.example."))[0], "nxdomain")
        self.assertEqual(response_kind(*exchange("ns1.example.", "TXT"))[0], "nodata")
        self.assertEqual(response_kind(*exchange("a.sub.example."))[0], "referral")

    def test_slip_answer_is_an_empty_truncated_response(self) -> None:
        request, response = exchange("ns1.example.")
        short = dns.message.from_wire(truncated(request, response))
        self.assertTrue(short.flags & dns.flags.TC)
        self.assertEqual((short.rcode(), short.answer), (dns.rcode.NOERROR, []))
        self.assertEqual(str(short.question[0].name), "ns1.example.")

    def test_bad_settings(self) -> None:
        self.assertRaises(ValueError, RateLimiter, rate=0)
        self.assertRaises(ValueError, RateLimiter, rate=1, slip=-1)
