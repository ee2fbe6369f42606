"""dnspython names with our hash and equality behave as dnspython defines them."""

from __future__ import annotations

import io

import dns.name
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

import gitdns.speedups  # (installed by importing gitdns)

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


class ToWireTests(SynchronousTestCase):
    @given(labels, st.booleans(), labels, st.booleans())
    def test_uncompressed_wire_is_dnspythons(
        self, a: list[bytes], absolute: bool, b: list[bytes], canonicalize: bool
    ) -> None:
        mixed = [label.upper() if i % 2 else label for i, label in enumerate(a)]
        subject = dns.name.Name([*mixed, b""] if absolute else mixed)
        origin = name(b)
        ours, theirs = io.BytesIO(), io.BytesIO()
        subject.to_wire(ours, None, origin, canonicalize)
        gitdns.speedups._to_wire(subject, theirs, None, origin, canonicalize)
        self.assertEqual(ours.getvalue(), theirs.getvalue())

    def test_relative_without_origin_fails_alike(self) -> None:
        for origin in (None, dns.name.Name([b"relative"])):
            with self.assertRaises(dns.name.NeedAbsoluteNameOrOrigin):
                dns.name.Name([b"www"]).to_wire(io.BytesIO(), None, origin)
