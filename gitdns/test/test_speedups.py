"""dnspython names with our hash and equality behave as dnspython defines them."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.SRV
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

import gitdns.speedups  # noqa: F401  (installed by importing gitdns)

labels = st.lists(st.binary(min_size=1, max_size=8), min_size=0, max_size=4)


def name(parts: list[bytes]) -> dns.name.Name:
    return dns.name.Name([*parts, b""])


class NameTests(SynchronousTestCase):
    @given(labels, labels)
    def test_equality_is_dnspythons(self, a: list[bytes], b: list[bytes]) -> None:
        first, second = name(a), name(b)
        expected = first.fullcompare(second)[1] == 0
        self.assertEqual(first == second, expected)
        self.assertEqual(first != second, not expected)
        if expected:
            self.assertEqual(hash(first), hash(second))

    @given(labels)
    def test_case_is_ignored(self, a: list[bytes]) -> None:
        upper = name([label.upper() for label in a])
        lower = name([label.lower() for label in a])
        self.assertEqual(upper, lower)
        self.assertEqual(hash(upper), hash(lower))

    def test_not_equal_to_other_types(self) -> None:
        self.assertNotEqual(dns.name.from_text("a."), "a.")
        self.assertEqual({dns.name.from_text("A.b."): 1}[dns.name.from_text("a.B.")], 1)


class ImportOrderTests(SynchronousTestCase):
    def test_dnspython_tables_built_before_us_still_work(self) -> None:
        import subprocess
        import sys

        program = (
            "import dns.tsig, dns.message\n"
            "import gitdns\n"
            "key = dns.tsig.Key('k.', 'kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=')\n"
            "query = dns.message.make_query('x.', 'A')\n"
            "query.use_tsig({key.name: key}, key.name)\n"
            "query.to_wire()\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
        )
        self.assertEqual(result.returncode, 0, result.stderr)


class RdataClassTests(SynchronousTestCase):
    def test_class_any_lookups_leave_class_in_alone(self) -> None:
        for rdtype in (dns.rdatatype.SRV, dns.rdatatype.A, dns.rdatatype.AAAA):
            dns.rdata.get_rdata_class(dns.rdataclass.ANY, rdtype)
        rdata = dns.rdata.from_text("IN", "SRV", "0 5 5060 sip.example.")
        self.assertIsInstance(rdata, dns.rdtypes.IN.SRV.SRV)
