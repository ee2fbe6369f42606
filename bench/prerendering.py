"""How the server answers while a big zone's answers are prerendered (in a thread, after
the load): the longest gap between answers to a steady stream of queries meanwhile.

Usage: .venv/bin/python bench/prerendering.py [LINES]
Starts its own gitdns-primary on 127.0.0.1 serving bench/load.sh's zone and asks it
bench/bigzone.sh's queries one at a time (each sent when the one before is answered)
from the moment it serves until a second after the table is in; prints how long the
build took, the answers and the longest gap between two answers during the build, and
the same for the second after it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
import time

import dns.message
from bigzone import big_queries, big_zone
from running import primary, workdir, zone_repo

AFTER = 1.0
TIMEOUT = 2.0


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 275_000
    questions = [line.split() for line in big_queries(lines, 200_000).splitlines()]
    wires = [dns.message.make_query(name, rdtype).to_wire() for name, rdtype in questions]
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(workdir("gitdns-prerendering-"))
        repo = zone_repo(work, "big.example", big_zone(lines))
        log = os.path.join(work, "log")
        _, port = stack.enter_context(
            primary(repo, os.path.join(work, "data"), "big.example.", log=log)
        )
        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        sock.connect(("127.0.0.1", port))
        sock.settimeout(TIMEOUT)
        answered: list[float] = [time.monotonic()]
        lost = 0
        built_at = None
        done = None
        index = 0
        while done is None or time.monotonic() < done:
            sock.send(wires[index % len(wires)])
            index += 1
            try:
                sock.recv(4096)
            except TimeoutError:
                lost += 1
                continue
            answered.append(time.monotonic())
            if built_at is None and len(answered) % 100 == 0:
                with open(log) as file:
                    if any("Prerendered" in line for line in file):
                        built_at = time.monotonic()
                        done = built_at + AFTER
        with open(log) as file:
            built = next(line for line in file if "Prerendered" in line)
    print(built.split("] ", 1)[1].strip())
    for label, start, end in [
        ("during the build", answered[0], built_at),
        (f"{AFTER:.0f} s after", built_at, done),
    ]:
        times = [t for t in answered if start <= t <= end]
        gap = max(b - a for a, b in itertools.pairwise(times))
        rate = len(times) / (end - start)
        print(f"{label}: {len(times)} answers ({rate:.0f}/s), longest gap {gap * 1000:.1f} ms")
    print(f"lost: {lost}")


if __name__ == "__main__":
    main()
