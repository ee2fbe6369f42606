"""Faster hashing, equality and wire form for dnspython's Name, installed when gitdns is
imported.

dnspython hashes a name with a Python loop over every character of every label, and
compares two names through fullcompare(); a 200,000-name zone spends seconds in them
(about 5 µs per dict lookup). These versions give the same answers (names are equal
when their labels are equal ignoring ASCII case; equal names hash alike) from C-level
bytes operations, about ten times faster. Writing a name without compression skips
dnspython's per-suffix Name objects.

Rdata hash the wire form they compare by, made through a BytesIO and dnspython's
generic writer (about 5 µs); for A, AAAA and TXT, the most numerous records of a big
zone, and SOA, which every UPDATE hashes many times, we make the same bytes directly, so
the hash is the same number.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA


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


_to_wire = dns.name.Name.to_wire


def _to_wire_uncompressed(
    self: dns.name.Name,
    file: Any | None = None,
    compress: dict | None = None,
    origin: dns.name.Name | None = None,
    canonicalize: bool = False,
) -> bytes | None:
    # Writing to a file without compression, dnspython makes a Name of every suffix (to
    # look it up in a compression table there is none of); hashing and comparing rdata
    # that hold names does that all the time. Its bytes-returning branch writes the same
    # labels without them.
    if file is None or compress is not None:
        return _to_wire(self, file, compress, origin, canonicalize)
    file.write(_to_wire(self, None, None, origin, canonicalize))
    return None


def _hash_a(self: dns.rdata.Rdata) -> int:
    # The address is kept in canonical text, whose inet_pton is dnspython's inet_aton.
    return hash(socket.inet_pton(socket.AF_INET, self.address))  # type: ignore[attr-defined]


def _hash_aaaa(self: dns.rdata.Rdata) -> int:
    return hash(socket.inet_pton(socket.AF_INET6, self.address))  # type: ignore[attr-defined]


def _canonical(name: dns.name.Name) -> bytes:
    """The name's wire form as rdata digests write it (lower case, relative names end
    at the root)."""
    labels = name.labels
    wire = b"".join([len(label).to_bytes(1, "big") + label.lower() for label in labels])
    return wire if labels and not labels[-1] else wire + b"\x00"


_SOA_NUMBERS = struct.Struct("!IIIII")


def _hash_soa(self: dns.rdata.Rdata) -> int:
    # Every UPDATE hashes the SOA it replaces and the one it makes, many times over.
    soa: Any = self
    numbers = _SOA_NUMBERS.pack(soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum)
    return hash(_canonical(soa.mname) + _canonical(soa.rname) + numbers)


def _hash_txt(self: dns.rdata.Rdata) -> int:
    strings = self.strings  # type: ignore[attr-defined]
    if len(strings) == 1:
        (only,) = strings
        return hash(len(only).to_bytes(1, "big") + only)
    return hash(b"".join([len(s).to_bytes(1, "big") + s for s in strings]))


# class, its fast hash, and records whose wire forms cover what the hash must handle
_RDATA_HASHES = (
    (dns.rdtypes.IN.A.A, _hash_a, ("192.0.2.1", "0.0.0.0", "255.255.255.255")),
    (dns.rdtypes.IN.AAAA.AAAA, _hash_aaaa, ("2001:db8::1", "::", "::ffff:192.0.2.1")),
    (dns.rdtypes.ANY.TXT.TXT, _hash_txt, ('"v=spf1 -all"', '"" "a" "b;c"', '"\\200x"')),
    (
        dns.rdtypes.ANY.SOA.SOA,
        _hash_soa,
        (
            "ns1.example. hostmaster.example. 1 2 3 4 5",
            "NS1.Ex. H.ex. 4294967295 0 0 0 0",
            "a b 1 2 3 4 5",
        ),
    ),
)


def _install_rdata_hashes() -> None:
    """Each fast hash replaces dnspython's only if this dnspython lays the class out as we
    know and the two agree on samples."""
    for cls, fast, samples in _RDATA_HASHES:
        if cls.__hash__ is not dns.rdata.Rdata.__hash__:
            continue
        rdtype = dns.rdatatype.RdataType.make(cls.__name__)
        try:
            records = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, text) for text in samples]
            agree = all(fast(rd) == dns.rdata.Rdata.__hash__(rd) for rd in records)
        except Exception:
            agree = False
        if agree:
            cls.__hash__ = fast  # type: ignore[method-assign]


def install() -> None:
    dns.name.Name.__hash__ = _hash  # type: ignore[method-assign]
    dns.name.Name.__eq__ = _eq  # type: ignore[method-assign]
    dns.name.Name.__ne__ = _ne  # type: ignore[method-assign]
    dns.name.Name.to_wire = _to_wire_uncompressed  # type: ignore[method-assign]
    # dnspython files the class of each (class, type) when first asked; once asked for
    # class ANY with an IN-only type (SRV, A) it files GenericRdata there, and from
    # then on uses that for class IN too, unless IN was asked first: ask IN first.
    dns.rdata.load_all_types(disable_dynamic_load=False)
    _install_rdata_hashes()
    _rehash_dnspython_tables()


def _rehash_dnspython_tables() -> None:
    """dnspython modules imported before us hold tables keyed by names (dns.tsig's MAC
    sizes and hash functions, say), filed under the old hash: file them again."""
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("dns."):
            continue
        namespaces = [vars(module)]
        namespaces += [vars(value) for value in vars(module).values() if isinstance(value, type)]
        for namespace in namespaces:
            for value in list(namespace.values()):
                _refile(value)


def _refile(table: object) -> None:
    if isinstance(table, dict) and any(isinstance(key, dns.name.Name) for key in table):
        items = list(table.items())
        table.clear()
        table.update(items)
    elif isinstance(table, set) and any(isinstance(key, dns.name.Name) for key in table):
        members = list(table)
        table.clear()
        table.update(members)
