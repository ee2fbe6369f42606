"""dnspython names with our hash and equality behave as dnspython defines them."""

from __future__ import annotations

import io

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

import gitdns.speedups  # (installed by importing gitdns)

ORIGINAL_TO_WIRE = gitdns.speedups._to_wire

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

    @given(labels, labels, st.booleans(), st.booleans())
    def test_uncompressed_wire_is_dnspythons(
        self, a: list[bytes], b: list[bytes], absolute: bool, canonicalize: bool
    ) -> None:
        subject = name(a) if absolute else dns.name.Name(a)
        origin = name(b)
        written = io.BytesIO()
        subject.to_wire(written, None, origin, canonicalize)
        original = io.BytesIO()
        ORIGINAL_TO_WIRE(subject, original, None, origin, canonicalize)
        self.assertEqual(written.getvalue(), original.getvalue())
        self.assertEqual(written.getvalue(), subject.to_wire(None, None, origin, canonicalize))

    def test_relative_name_without_origin_is_refused(self) -> None:
        with self.assertRaises(dns.name.NeedAbsoluteNameOrOrigin):
            dns.name.Name([b"a"]).to_wire(io.BytesIO())

    def test_not_equal_to_other_types(self) -> None:
        self.assertNotEqual(dns.name.from_text("a."), "a.")
        self.assertEqual({dns.name.from_text("A.b."): 1}[dns.name.from_text("a.B.")], 1)


class RdataHashTests(SynchronousTestCase):
    """A, AAAA, TXT and SOA hash as dnspython hashes them, just faster."""

    def test_installed(self) -> None:
        for cls in (
            dns.rdtypes.IN.A.A,
            dns.rdtypes.IN.AAAA.AAAA,
            dns.rdtypes.ANY.TXT.TXT,
            dns.rdtypes.ANY.SOA.SOA,
        ):
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

    @given(
        st.lists(st.from_regex(r"[A-Za-z0-9-]{1,10}", fullmatch=True), min_size=1, max_size=3),
        st.lists(st.from_regex(r"[A-Za-z0-9-]{1,10}", fullmatch=True), min_size=0, max_size=3),
        st.lists(st.integers(0, 2**32 - 1), min_size=5, max_size=5),
    )
    def test_soa(self, mname: list[str], rname: list[str], numbers: list[int]) -> None:
        names = [".".join(mname) + ".", ".".join(rname) + "."]
        text = " ".join(names + [str(number) for number in numbers])
        rd = dns.rdata.from_text(dns.rdataclass.IN, "SOA", text)
        lower = dns.rdata.from_text(dns.rdataclass.IN, "SOA", text.lower())
        self.assertEqual(hash(rd), dns.rdata.Rdata.__hash__(rd))
        self.assertEqual(rd, lower)
        self.assertEqual(hash(rd), hash(lower))

    def test_soa_with_relative_names(self) -> None:
        rd = dns.rdata.from_text(dns.rdataclass.IN, "SOA", "Ns1 h 1 2 3 4 5")
        self.assertEqual(hash(rd), dns.rdata.Rdata.__hash__(rd))


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
