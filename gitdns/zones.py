"""Zones as served: immutable snapshots built from the repository's files.

A ZoneSet is replaced as a whole on reload, so a query sees either the old or the new
data, never a mixture. Parsed zones are reused by git blob id: a reload parses only the
files that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress
from operator import methodcaller

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from gitdns.keys import is_key_file
from gitdns.zonefile import CollectionPaused, ZoneFileError, read_zone_file

SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS


class Zone:
    """One zone's data, indexed for answering."""

    __slots__ = ("cuts", "names", "negative_soa", "nodes", "origin", "serial", "soa")

    def __init__(self, origin: dns.name.Name, rrsets: Iterable[dns.rrset.RRset]) -> None:
        nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        for rrset in rrsets:
            nodes.setdefault(rrset.name, {})[rrset.rdtype] = rrset
        self._index(origin, nodes)

    @classmethod
    def from_nodes(
        cls, origin: dns.name.Name, nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]]
    ) -> Zone:
        """The Zone of nodes as Zone() would have made them from their RRsets; the dict
        is taken over, not copied (the reader builds it so: a big zone is not indexed
        twice)."""
        zone = cls.__new__(cls)
        zone._index(origin, nodes)
        return zone

    def _index(
        self, origin: dns.name.Name, nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]]
    ) -> None:
        self.origin = origin
        self.nodes = nodes
        apex = self.nodes.get(origin, {})
        if SOA not in apex:
            raise ValueError(f"no SOA record at the zone apex {origin}")
        if len(apex[SOA]) != 1:
            raise ValueError(f"more than one SOA record at the zone apex {origin}")
        if NS not in apex:
            raise ValueError(f"no NS records at the zone apex {origin}")
        self.soa: dns.rrset.RRset = apex[SOA]
        self.serial: int = self.soa[0].serial
        # RFC 2308 section 5: negative answers live for min(SOA TTL, SOA MINIMUM).
        self.negative_soa = dns.rrset.from_rdata_list(
            origin, min(self.soa.ttl, self.soa[0].minimum), list(self.soa)
        )
        # The names with NS records but the apex (iterated in C: a big zone has many names).
        delegated = compress(nodes, map(methodcaller("__contains__", NS), nodes.values()))
        self.cuts: frozenset[dns.name.Name] = frozenset(delegated) - {origin}
        # Every owner and every empty non-terminal between it and the apex. Most owners
        # sit right below the apex: nothing to look for between, no Name to make.
        empty: set[dns.name.Name] = set()
        depth = len(origin.labels) + 1
        for name in nodes:
            labels = name.labels
            if len(labels) > depth:
                for start in range(1, len(labels) - depth + 1):
                    parent = dns.name.Name(labels[start:])
                    if parent in nodes or parent in empty:
                        break
                    empty.add(parent)
        # The apex is in nodes (it has the SOA). Made from an iterator, the set grows as
        # it fills (half the table that frozenset(nodes) would size for 2 * len(nodes)).
        self.names: frozenset[dns.name.Name] = frozenset(iter(nodes))
        if empty:
            self.names |= empty

    def rrsets(self) -> Iterable[dns.rrset.RRset]:
        for node in self.nodes.values():
            yield from node.values()

    def __repr__(self) -> str:
        return f"<Zone {self.origin} serial {self.serial}, {len(self.nodes)} names>"


# Loads of this much zone text (about 25,000 records and up) end with what they made
# moved out of the cyclic collector's sight (gc.freeze, see CollectionPaused): walking
# it at every full collection costs about a second per 275,000 records. Smaller loads
# do not freeze: freezing also keeps whatever else is alive then (connections, say)
# from ever being collected if it later becomes cyclic garbage.
FREEZE_SIZE = 1 << 20


def parse_zone(origin: dns.name.Name, text: str, filename: str) -> Zone:
    """Build a Zone from master-file text; raises ZoneFileError."""
    with CollectionPaused(freeze=len(text) >= FREEZE_SIZE):
        nodes = read_zone_file(text, origin, filename).nodes
        try:
            return Zone.from_nodes(origin, nodes)
        except ValueError as error:
            raise ZoneFileError(filename, None, str(error)) from None


def zone_name(filename: str) -> dns.name.Name | None:
    """The zone a root file of the repository holds, or None if the file is no zone.

    Key files (``_keys``, ``X._keys``) and dot files are not zones.
    """
    if filename.startswith(".") or is_key_file(filename):
        return None
    try:
        return dns.name.from_text(filename)
    except (dns.exception.DNSException, UnicodeError):
        return None


@dataclass(frozen=True)
class SourceFile:
    """A root file of the repository at one revision."""

    name: str
    blob_id: str
    data: bytes
    # A _keys file: always read, never a zone.
    key: bool = False


@dataclass(frozen=True)
class LoadedZone:
    blob_id: str
    zone: Zone
    filename: str


@dataclass(frozen=True)
class ZoneSet:
    """All zones served at one moment, keyed by origin."""

    zones: Mapping[dns.name.Name, Zone] = field(default_factory=dict)
    # Where each zone came from, so the next load can skip unchanged blobs.
    sources: Mapping[dns.name.Name, LoadedZone] = field(default_factory=dict)

    def find(self, name: dns.name.Name) -> Zone | None:
        """The closest enclosing zone of name (nested zones: the deepest wins)."""
        zones = self.zones
        while True:
            zone = zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root or name == dns.name.empty:
                return None
            name = name.parent()


@dataclass(frozen=True)
class LoadResult:
    zoneset: ZoneSet
    errors: list[ZoneFileError]
    # Origins whose served data differs from the previous ZoneSet (added, removed, changed).
    changed: frozenset[dns.name.Name]
    # The zones read from their text by this load (not stored, nor made by UPDATEs).
    read: tuple[LoadedZone, ...] = ()
    # How many zones came from the store instead.
    stored: int = 0
    # The previous load's zones this one replaced or removed.
    dropped: tuple[LoadedZone, ...] = ()


# A zone stored for (blob id, origin) by an earlier run, or None (gitdns.zonecache).
Stored = Callable[[str, dns.name.Name], "Zone | None"]


def load_zoneset(
    files: Iterable[SourceFile],
    previous: ZoneSet | None = None,
    parsed: Iterable[LoadedZone] = (),
    stored: Stored | None = None,
) -> LoadResult:
    """Build the next ZoneSet from the repository's root files.

    A file whose blob is unchanged reuses its parsed zone; so does one in parsed (zones
    made already, by an UPDATE), and one stored (parsed by an earlier run); a file that
    fails to parse keeps its previous good copy (or is left out when there is none) and
    is reported.
    """
    previous = previous or ZoneSet()
    # Start from copies of the previous tables (no name is hashed again) and touch only
    # what changed: a reload of 10,000 zones costs what the changed files cost.
    zones: dict[dns.name.Name, Zone] = dict(previous.zones)
    sources: dict[dns.name.Name, LoadedZone] = dict(previous.sources)
    by_file = {loaded.filename: loaded for loaded in previous.sources.values()}
    fresh = {loaded.filename: loaded for loaded in parsed}
    errors: list[ZoneFileError] = []
    changed: set[dns.name.Name] = set()
    present: set[str] = set()
    read: list[LoadedZone] = []
    from_store = 0
    files = list(files)
    # Files not parsed again have no data: their size does not count.
    with CollectionPaused(freeze=sum(len(source.data) for source in files) >= FREEZE_SIZE):
        for source in files:
            made = fresh.get(source.name)
            if made is not None and made.blob_id == source.blob_id:
                origin = made.zone.origin
                zones[origin], sources[origin] = made.zone, made
                changed.add(origin)
                present.add(source.name)
                continue
            known = by_file.get(source.name)
            if known is not None and known.blob_id == source.blob_id:
                present.add(source.name)
                continue
            origin = known.zone.origin if known is not None else zone_name(source.name)
            if origin is None:
                continue
            present.add(source.name)
            zone = stored(source.blob_id, origin) if stored is not None else None
            if zone is not None:
                from_store += 1
                zones[origin] = zone
                sources[origin] = LoadedZone(source.blob_id, zone, source.name)
                changed.add(origin)
                continue
            try:
                text = source.data.decode("utf-8")
                zone = parse_zone(origin, text, source.name)
            except UnicodeDecodeError as error:
                line = source.data[: error.start].count(b"\n") + 1
                reason = f"not UTF-8 text ({error.reason})"
                errors.append(ZoneFileError(source.name, line, reason))
            except ZoneFileError as error:
                errors.append(error)
            else:
                loaded = LoadedZone(source.blob_id, zone, source.name)
                zones[origin], sources[origin] = zone, loaded
                changed.add(origin)
                read.append(loaded)
            # A file that fails keeps its previous good copy, still in the tables.
    for filename, loaded in by_file.items():
        if filename not in present:
            origin = loaded.zone.origin
            if sources.get(origin) is loaded:
                del zones[origin], sources[origin]
                changed.add(origin)
    dropped = tuple(
        previous.sources[origin]
        for origin in changed
        if origin in previous.sources and sources.get(origin) is not previous.sources[origin]
    )
    zoneset = ZoneSet(zones, sources)
    return LoadResult(zoneset, errors, frozenset(changed), tuple(read), from_store, dropped)
