"""Faster hashing and equality for dnspython's Name, installed when gitdns is imported.

dnspython hashes a name with a Python loop over every character of every label, and
compares two names through fullcompare(); a 200,000-name zone spends seconds in them
(about 5 µs per dict lookup). These versions give the same answers (names are equal
when their labels are equal ignoring ASCII case; equal names hash alike) from C-level
bytes operations, about ten times faster.
"""

from __future__ import annotations

import dns.name


def _hash(self: dns.name.Name) -> int:
    # Two different names may collide ("a.b" as one label): allowed for a hash.
    return hash(b".".join(self.labels).lower())


def _eq(self: dns.name.Name, other: object) -> bool:
    if not isinstance(other, dns.name.Name):
        return False
    mine, theirs = self.labels, other.labels
    if mine == theirs:
        return True
    return len(mine) == len(theirs) and all(
        a.lower() == b.lower() for a, b in zip(mine, theirs, strict=True)
    )


def _ne(self: dns.name.Name, other: object) -> bool:
    return not _eq(self, other)


def install() -> None:
    dns.name.Name.__hash__ = _hash  # type: ignore[method-assign]
    dns.name.Name.__eq__ = _eq  # type: ignore[method-assign]
    dns.name.Name.__ne__ = _ne  # type: ignore[method-assign]
