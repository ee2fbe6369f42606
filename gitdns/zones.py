"""Zones as served: immutable snapshots built from the repository's files.

A ZoneSet is replaced as a whole on reload, so a query sees either the old or the new
data, never a mixture. Parsed zones are reused by git blob id: a reload parses only the
files that changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from gitdns.keys import is_key_file
from gitdns.zonefile import ZoneFileError, read_rrsets

SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS


class Zone:
    """One zone's data, indexed for answering."""

    __slots__ = ("cuts", "names", "negative_soa", "nodes", "origin", "serial", "soa")

    def __init__(self, origin: dns.name.Name, rrsets: Iterable[dns.rrset.RRset]) -> None:
        self.origin = origin
        self.nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        for rrset in rrsets:
            self.nodes.setdefault(rrset.name, {})[rrset.rdtype] = rrset
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
        self.cuts: frozenset[dns.name.Name] = frozenset(
            name for name, node in self.nodes.items() if NS in node and name != origin
        )
        # Every owner and every empty non-terminal between it and the apex.
        names = set()
        for name in self.nodes:
            while name not in names and name != origin:
                names.add(name)
                name = name.parent()
        names.add(origin)
        self.names: frozenset[dns.name.Name] = frozenset(names)

    def rrsets(self) -> Iterable[dns.rrset.RRset]:
        for node in self.nodes.values():
            yield from node.values()

    def __repr__(self) -> str:
        return f"<Zone {self.origin} serial {self.serial}, {len(self.nodes)} names>"


def parse_zone(origin: dns.name.Name, text: str, filename: str) -> Zone:
    """Build a Zone from master-file text; raises ZoneFileError."""
    rrsets = read_rrsets(text, origin, filename)
    try:
        return Zone(origin, rrsets)
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


def load_zoneset(files: Iterable[SourceFile], previous: ZoneSet | None = None) -> LoadResult:
    """Build the next ZoneSet from the repository's root files.

    A file whose blob is unchanged reuses its parsed zone; a file that fails to parse
    keeps its previous good copy (or is left out when there is none) and is reported.
    """
    previous = previous or ZoneSet()
    zones: dict[dns.name.Name, Zone] = {}
    sources: dict[dns.name.Name, LoadedZone] = {}
    errors: list[ZoneFileError] = []
    for source in files:
        origin = zone_name(source.name)
        if origin is None:
            continue
        known = previous.sources.get(origin)
        if known is not None and known.blob_id == source.blob_id:
            zones[origin], sources[origin] = known.zone, known
            continue
        try:
            text = source.data.decode("utf-8")
            zone = parse_zone(origin, text, source.name)
        except UnicodeDecodeError as error:
            errors.append(ZoneFileError(source.name, None, f"not UTF-8 text ({error.reason})"))
        except ZoneFileError as error:
            errors.append(error)
        else:
            zones[origin], sources[origin] = zone, LoadedZone(source.blob_id, zone, source.name)
            continue
        if known is not None:
            zones[origin], sources[origin] = known.zone, known
    changed = frozenset(
        origin
        for origin in zones.keys() | previous.zones.keys()
        if zones.get(origin) is not previous.zones.get(origin)
    )
    return LoadResult(ZoneSet(zones, sources), errors, changed)
