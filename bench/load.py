"""Load one zone file the way gitdns-primary does (reader + index); print seconds.

Used by bench/load.sh under /usr/bin/time, which reports the peak resident size.
"""

from __future__ import annotations

import sys
import time

import dns.name

from gitdns.zones import parse_zone


def main() -> None:
    origin, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as file:
        text = file.read()
    started = time.perf_counter()
    zone = parse_zone(dns.name.from_text(origin), text, path)
    print(f"{time.perf_counter() - started:.2f} s, {len(zone.nodes)} names")


if __name__ == "__main__":
    main()
