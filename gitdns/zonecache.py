"""Parsed zones kept on disk by git blob id, so that a restart need not parse them again.

An entry is one zone as parsed from one blob: ``<blob id>-<origin digest>`` (the same
text is a different zone under another origin), in a directory named after the program
version: gitdns's version and source, dnspython's, Python's and FORMAT. A new program
reads no entry an older one wrote; the older directories are removed.

The format is pickle, chosen by measurement against parsing the text: plain pickle of
dnspython's objects loaded about twice as slowly as the text parses, as their
``__setstate__`` and constructors run Python code per record and name. Names, rdatas
and rdatasets are therefore pickled as their slot values and rebuilt by one small
function that sets them back, without validating again. bench/zonecache.py: that
loads a 275,000-line zone, or 10,000 small ones, in about 0.7 of their parse time (the
cost left is dnspython's: every object made again, every rdata hashed into its
rdataset again, as parsing does), while an entry takes three times the text's space
and writing it costs about a parse: hence --zone-cache is off by default.

Entries are written atomically (temporary file, then rename); without fsync: an entry
lost in a crash is only parsed again. One that cannot be read is reported, removed and
parsed again: never fatal.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.metadata
import io
import itertools
import os
import pickle
import shutil
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import dns.name
import dns.rdata
import dns.rdataset
import dns.rrset
import dns.version
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from gitdns.zones import LoadedZone, Zone

log = Logger()

# Raised whenever what an entry holds, or how, changes.
FORMAT = 1

_SLOTTED = (dns.name.Name, dns.rdata.Rdata, dns.rdataset.Rdataset)
_slots: dict[type, tuple[str, ...]] = {}


def program_version() -> str:
    """What entries depend on: the versions of gitdns, its source, dnspython and Python.

    gitdns's own source is part of it, as a change of the parser or of Zone must never
    meet entries written before it, whatever the version number says.
    """
    try:
        version = importlib.metadata.version("gitdns")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256(f"{FORMAT} {version} {dns.version.version} {sys.version}".encode())
    package = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as source:
                digest.update(name.encode() + b"\0" + source.read())
    return f"v{FORMAT}-{digest.hexdigest()[:20]}"


def entry_name(blob_id: str, origin: dns.name.Name) -> str:
    digest = hashlib.blake2s(origin.canonicalize().to_wire(), digest_size=8).hexdigest()
    return f"{blob_id}-{digest}"


def _slots_of(cls: type) -> tuple[str, ...]:
    """Every slot of cls's instances."""
    slots = _slots.get(cls)
    if slots is None:
        declared = (vars(c).get("__slots__", ()) for c in cls.__mro__)
        slots = _slots[cls] = tuple(
            itertools.chain.from_iterable((s,) if isinstance(s, str) else s for s in declared)
        )
    return slots


_new = object.__new__
_set = object.__setattr__
Name = dns.name.Name


def _name(labels: tuple[bytes, ...]) -> dns.name.Name:
    name = _new(Name)
    _set(name, "labels", labels)
    return name


def _restore(cls: type, values: tuple[Any, ...]) -> object:
    """An instance of cls with its slots set to values (in _slots_of(cls) order)."""
    instance = _new(cls)
    for slot, value in zip(_slots_of(cls), values, strict=True):
        _set(instance, slot, value)
    return instance


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: object) -> Any:
        cls = type(obj)
        if cls is Name:
            return _name, (obj.labels,)  # type: ignore[attr-defined]
        # Some rdata classes declare no slots of their own, so their instances have a
        # __dict__; dnspython never puts anything in it (nor pickles it).
        if isinstance(obj, _SLOTTED) and not getattr(obj, "__dict__", None):
            values = tuple(getattr(obj, slot) for slot in _slots_of(cls))
            return _restore, (cls, values)
        return NotImplemented


def dumps(zone: Zone) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(zone)
    return out.getvalue()


def loads(data: bytes) -> object:
    """Unpickle with the cyclic garbage collector paused: the objects made are all kept,
    and collections while they pile up cost more than the loading itself."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(data)
    finally:
        if paused:
            gc.enable()


class ZoneCache:
    """The entries under directory (the primary's ``<data-dir>/zone-cache``).

    get() may run in any thread; writes run in a thread of their own, one after the
    other, and only the newest set of zones to keep is written (keep()).

    Safety of unpickling: the directory is ours, inside --data-dir (mode 0700, made by
    the server as its own user, like the git clone beside it); whoever can write there
    can already change what we serve and run code as us.
    """

    def __init__(self, directory: str, version: str | None = None) -> None:
        self.root = directory
        self.version = version or program_version()
        self.directory = os.path.join(directory, self.version)
        # Entry names known to be on disk (the writer's thread only); None: not listed yet.
        self._on_disk: set[str] | None = None
        # Entries get() found broken and removed: written again with the next write.
        self._broken: set[str] = set()
        self._wanted: dict[str, Zone] | None = None
        self._writing: defer.Deferred[None] | None = None
        self._lock = threading.Lock()
        # Zones found here (for the log at start-up).
        self.hits = 0

    def get(self, blob_id: str, origin: dns.name.Name) -> Zone | None:
        """The zone parsed from blob_id for origin, or None if there is no usable entry."""
        name = entry_name(blob_id, origin)
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as entry:
                data = entry.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warn(
                "Zone cache entry {path} unreadable ({error}): parsing the zone",
                path=path,
                error=error.strerror,
            )
            return None
        try:
            zone = loads(data)
            if not isinstance(zone, Zone) or zone.origin != origin:
                raise ValueError(f"not a zone {origin}")
        except Exception as error:
            log.warn(
                "Zone cache entry {path} unusable ({error}): parsing the zone again",
                path=path,
                error=f"{type(error).__name__}: {error}",
            )
            with contextlib.suppress(OSError):
                os.unlink(path)
            self._broken.add(name)
            return None
        self.hits += 1
        return zone

    # Writing.

    def keep(self, sources: Iterable[LoadedZone]) -> defer.Deferred[None]:
        """Have an entry for each of sources, and no other, soon (on the reactor)."""
        self._wanted = {entry_name(s.blob_id, s.zone.origin): s.zone for s in sources}
        if self._writing is None:
            self._writing = self._write_next()
        return self._writing

    def _write_next(self) -> defer.Deferred[None]:
        wanted, self._wanted = self._wanted, None
        d = threads.deferToThread(self.write_blocking, wanted or {})

        def done(result: object) -> defer.Deferred[None] | None:
            if isinstance(result, Failure):
                log.failure(
                    "Could not update the zone cache in {path}", result, path=self.directory
                )
            if self._wanted is not None:
                return self._write_next()
            self._writing = None
            return None

        return d.addBoth(done)

    def write_blocking(self, wanted: Mapping[str, Zone]) -> None:
        """Write the entries of wanted not on disk yet, remove all others."""
        with self._lock:
            if self._on_disk is None:
                self._on_disk = self._list()
            while self._broken:
                self._on_disk.discard(self._broken.pop())
            for name in self._on_disk - wanted.keys():
                self._remove(name)
            for name, zone in wanted.items():
                if name not in self._on_disk:
                    self._write(name, zone)

    def _list(self) -> set[str]:
        """The entries on disk; entries of other versions and half-written ones removed."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        for name in os.listdir(self.root):
            if name != self.version:
                _remove_tree(os.path.join(self.root, name))
        entries = set()
        for name in os.listdir(self.directory):
            if name.endswith(".tmp"):
                self._remove(name)
            else:
                entries.add(name)
        return entries

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.directory, name))
        if self._on_disk is not None:
            self._on_disk.discard(name)

    def _write(self, name: str, zone: Zone) -> None:
        path = os.path.join(self.directory, name)
        try:
            data = dumps(zone)
        except Exception as error:
            log.warn("Zone {zone} not cached: {error}", zone=str(zone.origin), error=error)
            return
        temporary = f"{path}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
        assert self._on_disk is not None
        self._on_disk.add(name)


def _remove_tree(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)
