"""Parsed zones kept on disk by git blob id: a restart need not read the text again.

An entry holds a zone's names and record data as plain values (label tuples, numbers,
strings, rdata wire forms) in marshal's format, from which the very same Zone is built
again, with names and data shared as the reader shares them: a big zone in half the
time its text takes to parse (a small one gains little). It is bound to one blob and
origin (its file name), and to this program (a digest of the modules that decide what
a zone file means, dnspython's and Python's versions): anything else is a miss, and
the text is parsed. A digest of the contents makes a torn or damaged entry a miss
too, and the entry is removed.

Only zones parsed from text are stored, after they are served: an UPDATE makes a new
blob at every commit, and its zone is not worth a write each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.version

from gitdns import zonefile, zones
from gitdns.zones import LoadedZone, Zone

RT = dns.rdatatype.RdataType
IN = dns.rdataclass.IN
_DIGEST_SIZE = 16


def _program() -> bytes:
    """What an entry is only valid for: the modules that make zones, and the versions."""
    stamp = hashlib.sha256()
    for module in (zonefile, zones, sys.modules[__name__]):
        stamp.update(Path(module.__file__ or "").read_bytes())
    stamp.update(f"{dns.version.version} {sys.version} {marshal.version}".encode())
    return stamp.digest()


PROGRAM = _program()

# -- a zone as plain values and back -----------------------------------------------------

# How the common types' rdata are kept (names as indexes into the entry's name list);
# any other type is kept as its wire form.
_Encode = Callable[[dns.rdata.Rdata, Callable[[dns.name.Name], int]], Any]
_ENCODERS: dict[int, _Encode] = {
    RT.A: lambda rd, name: rd.address,
    RT.AAAA: lambda rd, name: rd.address,
    RT.TXT: lambda rd, name: rd.strings,
    RT.MX: lambda rd, name: (rd.preference, name(rd.exchange)),
    RT.SRV: lambda rd, name: (rd.priority, rd.weight, rd.port, name(rd.target)),
    RT.SOA: lambda rd, name: (
        name(rd.mname),
        name(rd.rname),
        rd.serial,
        rd.refresh,
        rd.retry,
        rd.expire,
        rd.minimum,
    ),
    **{rdtype: lambda rd, name: name(rd.target) for rdtype in zonefile.TARGET_MAKERS},
}


def encode(zone: Zone) -> bytes:
    """zone as an entry's contents (without the digest).

    One value per RRset, and its owner, types and TTL in arrays: loading makes no
    object per RRset that the zone does not keep (a tuple each would add a third to
    the peak memory of a big zone's load).
    """
    index: dict[tuple[bytes, ...], int] = {}

    def name(value: dns.name.Name) -> int:
        found = index.get(value.labels)
        if found is None:
            found = index[value.labels] = len(index)
        return found

    owners, keys, rdtypes, covers = array("I"), array("H"), array("H"), array("H")
    ttls, shared = array("I"), array("B")
    values: list[tuple | int] = []
    # RRsets sharing one items dict share one value (marked in shared): the first holds
    # it, the others the first's index. Loaded, they share it again.
    # id(items) -> index of the first RRset holding it.
    by_items: dict[int, int] = {}
    for owner, node in zone.nodes.items():
        owner_index = name(owner)
        for key, rrset in node.items():
            rdtype = int(rrset.rdtype)
            first = by_items.get(id(rrset.items))
            value: tuple | int
            if first is None:
                encoder = _ENCODERS.get(rdtype) if rrset.rdclass == IN else None
                if encoder is None:
                    value = tuple(rd.to_wire() for rd in rrset)
                else:
                    value = tuple(encoder(rd, name) for rd in rrset)
                by_items[id(rrset.items)] = len(values)
                shared.append(0)
            else:
                value = first
                shared[first] = 1
                shared.append(1)
            owners.append(owner_index)
            keys.append(int(key))
            rdtypes.append(rdtype)
            covers.append(int(rrset.covers))
            ttls.append(rrset.ttl)
            values.append(value)
    columns = tuple(column.tobytes() for column in (owners, keys, rdtypes, covers, ttls, shared))
    entry = (PROGRAM, zone.origin.labels, _chunks(tuple(index)), columns, _chunks(values))
    return marshal.dumps(entry)


# Items marshalled per call: one call holds the interpreter as long as it runs (a
# quarter of a second for a 275,000-record zone's values at once), and the reactor
# answers nobody meanwhile.
CHUNK = 4096


def _chunks(items: Sequence[Any]) -> tuple[bytes, ...]:
    return tuple(marshal.dumps(tuple(items[i : i + CHUNK])) for i in range(0, len(items), CHUNK))


def _unchunked(chunks: tuple[bytes, ...]) -> Iterator[Any]:
    for chunk in chunks:
        yield from marshal.loads(chunk)


def decode(origin: dns.name.Name, entry: tuple) -> Zone | None:
    """The Zone of an entry (as marshal loaded it); None when made by another program
    or for another origin."""
    program, origin_labels, label_chunks, columns, value_chunks = entry
    if program != PROGRAM or origin_labels != origin.labels:
        return None
    owners, keys, rdtypes, covers, ttls, shared = (
        array(code, column) for code, column in zip("IHHHIB", columns, strict=True)
    )
    make_name = zonefile.make_name
    names = [make_name(label_tuple) for label_tuple in _unchunked(label_chunks)]
    make_rrset = zonefile.make_rrset
    types = _RDATA_TYPES
    made: dict[int, dict] = {}
    table: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
    last = -1
    node: dict[int, dns.rrset.RRset] = {}
    for position, (owner_index, key, rdtype, covered, ttl, value, is_shared) in enumerate(
        zip(owners, keys, rdtypes, covers, ttls, _unchunked(value_chunks), shared, strict=True)
    ):
        if owner_index != last:
            last = owner_index
            owner = names[owner_index]
            node = table[owner] = {}
        if is_shared and type(value) is int:
            items = made[value]
        else:
            make = _DECODERS.get(rdtype) or _from_wire(rdtype)
            items = {make(each, names): None for each in value}
            if is_shared:
                made[position] = items
        node[types[key]] = make_rrset(owner, types[rdtype], types[covered], ttl, items)
    return Zone.from_nodes(origin, table)


class _RdataTypes(dict[int, RT]):
    """RdataType of each number met (RdataType.make takes a while)."""

    def __missing__(self, value: int) -> RT:
        made = self[value] = RT.make(value)
        return made


_RDATA_TYPES = _RdataTypes()

# How stored values become rdata again, given the entry's names.
_Decode = Callable[[Any, list[dns.name.Name]], dns.rdata.Rdata]
_DECODERS: dict[int, _Decode] = {
    RT.A: lambda value, names: zonefile.make_a(value),
    RT.AAAA: lambda value, names: zonefile.make_aaaa(value),
    RT.TXT: lambda value, names: zonefile.make_txt(value),
    RT.MX: lambda value, names: zonefile.make_mx(value[0], names[value[1]]),
    RT.SRV: lambda value, names: zonefile.make_srv(*value[:3], names[value[3]]),
    RT.SOA: lambda value, names: zonefile.make_soa(names[value[0]], names[value[1]], *value[2:]),
    **{
        rdtype: lambda value, names, make=make: make(names[value])
        for rdtype, make in zonefile.TARGET_MAKERS.items()
    },
}


def _from_wire(rdtype: int) -> _Decode:
    return lambda wire, names: dns.rdata.from_wire(IN, rdtype, wire, 0, len(wire))


# -- entries on disk ---------------------------------------------------------------------


class ZoneCache:
    """Entries in directory, one file per (blob, origin)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, blob_id: str, origin: dns.name.Name) -> str:
        # Origins may hold any byte: the file name holds a digest of it.
        spelled = hashlib.sha256(origin.to_digestable()).hexdigest()[:16]
        return os.path.join(self.directory, f"{blob_id}.{spelled}")

    def get(self, blob_id: str, origin: dns.name.Name) -> Zone | None:
        """The zone stored for blob_id and origin, or None (a damaged or stale entry
        is removed)."""
        path = self._path(blob_id, origin)
        try:
            with open(path, "rb") as file:
                stored = memoryview(file.read())
        except OSError:
            return None
        contents = stored[_DIGEST_SIZE:]
        zone = None
        if hashlib.blake2b(contents, digest_size=_DIGEST_SIZE).digest() == stored[:_DIGEST_SIZE]:
            with contextlib.suppress(ValueError, TypeError, EOFError, IndexError, KeyError):
                entry = marshal.loads(contents)
                # The file's bytes go before the zone is built (a big zone's peak memory).
                contents.release()
                stored.release()
                zone = decode(origin, entry)
        if zone is None:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return zone

    def put(self, loaded: Iterable[LoadedZone]) -> None:
        """Store these zones (not flushed: a lost or torn entry is a miss). Raises
        OSError."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        for made in loaded:
            contents = encode(made.zone)
            digest = hashlib.blake2b(contents, digest_size=_DIGEST_SIZE).digest()
            # Written in place: an entry cut short is a miss (its digest), and a
            # temporary file and a rename each took longer than a small zone's entry.
            path = self._path(made.blob_id, made.zone.origin)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as entry:
                entry.write(digest + contents)

    def remove(self, loaded: Iterable[LoadedZone]) -> None:
        """Remove the entries of these zones, if stored."""
        for made in loaded:
            with contextlib.suppress(OSError):
                os.unlink(self._path(made.blob_id, made.zone.origin))

    def keep_only(self, loaded: Iterable[LoadedZone]) -> int:
        """Remove every entry but those of these zones; how many were removed."""
        wanted = {os.path.basename(self._path(z.blob_id, z.zone.origin)) for z in loaded}
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.directory):
                if name not in wanted:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.directory, name))
                        removed += 1
        return removed
