"""The IXFR journal kept over a restart: written when the primary stops, read at start.

A secondary asking for IXFR after our restart then still gets the differences rather
than the whole zone. Each zone's differences are kept with the blob id of the zone
file they end at: after the restart they are used only if the zone is still made
from that very blob (a file changed meanwhile, even with the same serial, drops them).

Pickle, in our own data directory (mode 0700, nobody else writes there). A file that
cannot be read is reported and ignored: the journal then starts empty, as it did
before.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import dns.name
from twisted.logger import Logger

from gitdns.xfr import Delta
from gitdns.zones import ZoneSet

log = Logger()

FILE_NAME = "ixfr-journal.pickle"
# Raised whenever what the file holds, or how, changes.
FORMAT = 1

Journal = Mapping[dns.name.Name, tuple[Delta, ...]]


def save_journal(directory: str, journal: Journal, zones: ZoneSet) -> None:
    """Write journal for the zones as they are now (temporary file, then rename)."""
    kept = {
        origin.to_text(): (zones.sources[origin].blob_id, steps)
        for origin, steps in journal.items()
        if origin in zones.sources
    }
    path = os.path.join(directory, FILE_NAME)
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "wb") as out:
            pickle.dump((FORMAT, kept), out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except OSError as error:
        log.warn("IXFR journal not saved: {error}", error=str(error))


def load_journal(directory: str, zones: ZoneSet) -> dict[dns.name.Name, tuple[Delta, ...]]:
    """The saved differences that still end at the zones' current files; the file is
    removed once read (a later crash leaves no journal rather than an old one)."""
    path = os.path.join(directory, FILE_NAME)
    try:
        with open(path, "rb") as saved:
            version, kept = pickle.load(saved)
        os.remove(path)
    except FileNotFoundError:
        return {}
    except Exception as error:  # whatever a damaged file makes pickle raise
        log.warn("IXFR journal {path} ignored: {error}", path=path, error=repr(error))
        return {}
    if version != FORMAT:
        return {}
    journal = {}
    for text, (blob_id, steps) in kept.items():
        origin = dns.name.from_text(text)
        loaded = zones.sources.get(origin)
        zone = zones.zones.get(origin)
        if loaded is None or zone is None or loaded.blob_id != blob_id:
            continue
        if steps and steps[-1].new_serial == zone.serial:
            journal[origin] = steps
    return journal
