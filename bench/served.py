"""Resident size of a gitdns-primary serving the zone of bench/load.sh.

Usage: .venv/bin/python bench/served.py [LINES]
Starts its own gitdns-primary on 127.0.0.1 and stops it; prints its current and peak
resident size once the zone answers and once its answers are prerendered (the table is
built in the background after the load), with the size of a server serving a tiny zone
(what the process costs before any zone).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import dns.message
import dns.query
from bigzone import big_zone
from running import primary, wait_for_log, workdir, zone_repo

from gitdns.prerenderer import MIN_NAMES


def resident(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmRSS"][0]) // 1024, int(fields["VmHWM"][0]) // 1024


def serve(count: int) -> tuple[float, int, int, float | None, int, int]:
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(workdir("gitdns-served-"))
        repo = zone_repo(work, "big.example", big_zone(count))
        log = os.path.join(work, "log")
        started = time.monotonic()
        server, port = stack.enter_context(
            primary(repo, os.path.join(work, "data"), "big.example.", log=log)
        )
        ready = time.monotonic() - started
        for i in range(0, count - 5, max(1, (count - 5) // 20)):
            query = dns.message.make_query(f"h{i}.big.example.", "ANY")
            dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
        serving = resident(server.pid)
        if count < MIN_NAMES:
            return (ready, *serving, None, *serving)
        wait_for_log(log, "Prerendered")
        prerendered = time.monotonic() - started
        return (ready, *serving, prerendered, *resident(server.pid))


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 275_000
    for lines in (10, count):
        ready, rss, peak, prerendered, rss_after, peak_after = serve(lines)
        line = f"{lines} lines: serving after {ready:.1f} s, resident {rss} MB, peak {peak} MB"
        if prerendered is None:
            line += " (too few names for prerendered answers)"
        else:
            line += (
                f"; prerendered after {prerendered:.1f} s, resident {rss_after} MB,"
                f" peak {peak_after} MB"
            )
        print(line)


if __name__ == "__main__":
    main()
