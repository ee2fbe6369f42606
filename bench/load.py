"""Load one zone file the way gitdns-primary does (reader + index); print seconds.

With --cache DIR the zone comes from the zone cache in DIR (bench/load.sh stores it
there first with --store), as a restart finds it. Used by bench/load.sh under
/usr/bin/time, which reports the peak resident size.
"""

from __future__ import annotations

import argparse
import time

import dns.name
import pygit2

from gitdns.zonecache import ZoneCache
from gitdns.zonefile import CollectionPaused
from gitdns.zones import FREEZE_SIZE, LoadedZone, parse_zone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origin")
    parser.add_argument("path")
    parser.add_argument("--cache", help="a zone cache directory")
    parser.add_argument("--store", action="store_true", help="parse, then store in --cache")
    args = parser.parse_args()
    origin = dns.name.from_text(args.origin)
    with open(args.path, "rb") as file:
        data = file.read()
    blob_id = str(pygit2.hash(data))
    started = time.perf_counter()
    if args.cache and not args.store:
        # As load_zoneset calls it: the collector paused, a big zone frozen after.
        with CollectionPaused(freeze=len(data) >= FREEZE_SIZE):
            zone = ZoneCache(args.cache).get(blob_id, origin)
        if zone is None:
            raise SystemExit(f"{args.path} is not in the zone cache {args.cache}")
    else:
        zone = parse_zone(origin, data.decode("utf-8"), args.path)
    print(f"{time.perf_counter() - started:.2f} s, {len(zone.nodes)} names")
    if args.store:
        ZoneCache(args.cache).put([LoadedZone(blob_id, zone, args.path)])


if __name__ == "__main__":
    main()
