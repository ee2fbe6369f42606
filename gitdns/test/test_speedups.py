"""dnspython names with our hash and equality behave as dnspython defines them."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
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


class RdataHashTests(SynchronousTestCase):
    """A, AAAA and TXT hash as dnspython hashes them, just faster."""

    def test_installed(self) -> None:
        for cls in (dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA, dns.rdtypes.ANY.TXT.TXT):
            self.assertIsNot(cls.__hash__, dns.rdata.Rdata.__hash__, cls)

    def check(self, rdtype: str, text: str) -> None:
        rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        self.assertEqual(hash(rd), dns.rdata.Rdata.__hash__(rd))
        generic = dns.rdata.GenericRdata(rd.rdclass, rd.rdtype, rd.to_wire())
        self.assertEqual(rd, generic)
        self.assertEqual(hash(rd), hash(generic))

    @given(st.ip_addresses(v=4))
    def test_a(self, address: object) -> None:
        self.check("A", str(address))

    @given(st.ip_addresses(v=6))
    def test_aaaa(self, address: object) -> None:
        self.check("AAAA", str(address))

    @given(st.lists(st.binary(max_size=255), min_size=1, max_size=4))
    def test_txt(self, strings: list[bytes]) -> None:
        self.check("TXT", " ".join('"' + "".join(f"\\{b:03d}" for b in s) + '"' for s in strings))


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
