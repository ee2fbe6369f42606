"""Names made from labels known to be valid, without dnspython's checks.

dns.name.Name() converts and checks every label again (about 5 µs, more than the rest
of a lookup). Answering makes names from labels that are valid already: a suffix of a
valid name, or labels the wire parser has checked (at most 63 bytes each, 255 in all,
the root label last).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import dns.name

_new = dns.name.Name.__new__
_LENGTH = [bytes((length,)) for length in range(64)]
_set = object.__setattr__

Value = TypeVar("Value")


def name_from_labels(labels: tuple[bytes, ...]) -> dns.name.Name:
    """The name of labels, which must be valid (see the module docstring)."""
    name = _new(dns.name.Name)
    # Name is immutable: its own __setstate__ sets labels the same way.
    _set(name, "labels", labels)
    return name


def parent(name: dns.name.Name) -> dns.name.Name:
    """name without its first label; name must not be the root."""
    return name_from_labels(name.labels[1:])


def closest(table: Mapping[dns.name.Name, Value], name: dns.name.Name) -> Value | None:
    """The value of name or of its nearest ancestor in table (ZoneSet.find's rule)."""
    labels = name.labels
    found = table.get(name)
    start = 1
    while found is None and start < len(labels):
        found = table.get(name_from_labels(labels[start:]))
        start += 1
    return found


def wire_key(name: dns.name.Name) -> bytes:
    """name in lower-case wire form, uncompressed: a key that hashes once (bytes keep
    their hash) and compares as names do."""
    return b"".join([_LENGTH[len(label)] + label for label in name.labels]).lower()
