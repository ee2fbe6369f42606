"""Query rate on a big zone against the small-zone rate, in one run (issue #9).

The big zone is bench/load.sh's: LINES lines (A, TXT and MX owners h0..hN under
big.example.). Its query files hold --queries names drawn uniformly over every owner,
each with the type it has, and 10 % NXDOMAIN names: most queries ask something not
asked before, so a response cache cannot carry the rate. The small zone and its queries
are bench/queries.sh's.

This machine's speed drifts by tens of percent from one minute to the next, so two
gitdns servers, one per zone, run side by side (pinned to one CPU, dnsperf to
another) and are asked in turn, --duration seconds each, --rounds times; each round
gives a ratio and the medians are the figures. The big zone's server gets a new
query file each round (the answers its response cache kept from one round are no
better placed in the next). Measuring starts --settle seconds after the big zone's
server logged that its answers are prerendered (built in a thread once the zone is
served: seconds, answered the general way meanwhile). NSD and BIND, with
--servers, answer the big zone's first query file afterwards, one at a time.

Usage: bench/bigzone.sh [--lines 275000] [--queries 1000000] [--duration 6] [--rounds 9]
                        [--settle 10] [--servers gitdns,nsd,named] [--clients 20]
                        [--outstanding 300]
Prints qps per (server, zone), the server's CPU time per query (from /proc: less
sensitive to other loads on the machine than qps), gitdns big/small of both per round
and their medians (target >= 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    LABELS,
    build,
    dnsperf,
    dnsperf_options,
    make_queries,
    make_zone,
    prepare_run,
)
from tests.peers import Server, ServerError

SMALL_ORIGIN = "bench.example."
BIG_ORIGIN = "big.example."
# Loading 275,000 lines takes a while (git clone, parsing, indexing).
BIG_START_TIMEOUT = 600.0


def big_zone(lines: int) -> str:
    """bench/load.sh's zone: owner h<i> has an A (i % 3 == 0), TXT (1) or MX (2) record."""
    out = [
        f"$ORIGIN {BIG_ORIGIN}",
        "$TTL 3600",
        "@ SOA ns1 hostmaster 1 3600 600 86400 300",
        "@ NS ns1",
        "ns1 A 192.0.2.1",
    ]
    for i in range(lines - 5):
        kind = i % 3
        if kind == 0:
            out.append(f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        elif kind == 1:
            out.append(f'h{i} TXT "v=spf1 include:_spf.example.com ~all {i}"')
        else:
            out.append(f"h{i} MX 10 mail{i % 100}.example.net.")
    return "\n".join(out) + "\n"


def big_queries(lines: int, count: int, nx_share: float = 0.10, seed: int = 1) -> str:
    rng = random.Random(seed)
    owners = lines - 5
    types = ("A", "TXT", "MX")
    out = []
    for _ in range(count):
        if rng.random() < nx_share:
            out.append(f"nx{rng.randrange(10**7)}.{BIG_ORIGIN} A")
        else:
            i = rng.randrange(owners)
            out.append(f"h{i}.{BIG_ORIGIN} {types[i % 3]}")
    return "\n".join(out) + "\n"


def prerendered(server: Server) -> None:
    """Wait until gitdns has its zone's answers prerendered (built in a thread once the
    zone is served: seconds for the big zone, answered the general way meanwhile)."""
    deadline = time.monotonic() + BIG_START_TIMEOUT
    while "Prerendered" not in server.log():
        if time.monotonic() > deadline:
            raise RuntimeError("the zone's answers were never prerendered")
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process pid so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    label: str, server: Server, queries: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """One dnsperf run: qps and the server's CPU time per query in microseconds (NSD
    answers from a child process: its own CPU time says nothing, and is not given)."""
    print(f"{label:<13} ...", end=" ", flush=True)
    assert server.proc is not None
    before = cpu_seconds(server.proc.pid)
    result = dnsperf(server, queries, args)
    used = (cpu_seconds(server.proc.pid) - before) / (result.qps * args.duration) * 1e6
    usage = f"  {used:5.1f} us CPU/query" if server.name == "gitdns" else ""
    print(
        f"{result.qps:10.1f} qps{usage}  lost {result.lost}  avg {result.latency}"
        f"  [{result.rcodes}]",
        flush=True,
    )
    return result.qps, used


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--lines", type=int, default=275_000, help="lines of the big zone")
    p.add_argument("--queries", type=int, default=1_000_000, help="big-zone query file size")
    p.add_argument("--duration", type=int, default=6, help="seconds per dnsperf run")
    p.add_argument("--rounds", type=int, default=9, help="gitdns small then big, this many times")
    p.add_argument("--servers", default="gitdns", help="gitdns,nsd,named: others on the big zone")
    p.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds between the servers' readiness and the measurement (gitdns stores a "
        "zone it parsed in its zone cache then, a few seconds for the big one)",
    )
    dnsperf_options(p)
    args = p.parse_args(argv)
    args.max_qps = 0
    kinds = prepare_run(args)

    work = Path(tempfile.mkdtemp(prefix="gitdns-bigzone-"))
    try:
        small_queries = work / "small.txt"
        small_queries.write_text(make_queries(1000))
        big_files = []
        for seed in range(1, args.rounds + 1):
            big_files.append(work / f"big{seed}.txt")
            big_files[-1].write_text(big_queries(args.lines, args.queries, seed=seed))
        small_text, big_text = make_zone(1000), big_zone(args.lines)
        print(
            f"big zone {BIG_ORIGIN}: {args.lines} lines, {args.queries} random queries;"
            f" {args.rounds} rounds of {args.duration}s each after {args.settle:g}s,"
            f" dnsperf -c {args.clients} -T 1 -q {args.outstanding}",
            flush=True,
        )
        ratios: list[tuple[float, float]] = []
        failed = 0
        with contextlib.ExitStack() as running:
            small = build("gitdns", small_text, SMALL_ORIGIN)
            big = build("gitdns", big_text, BIG_ORIGIN, start_timeout=BIG_START_TIMEOUT)
            for server in (small, big):
                running.callback(server.stop)
                server.start()
            prerendered(big)
            time.sleep(args.settle)
            for round_number, big_file in enumerate(big_files, 1):
                small_qps, small_cpu = measure("gitdns small", small, small_queries, args)
                big_qps, big_cpu = measure("gitdns big", big, big_file, args)
                ratios.append((big_qps / small_qps, small_cpu / big_cpu))
                print(
                    f"  round {round_number}: big/small {ratios[-1][0]:.3f},"
                    f" CPU per query small/big {ratios[-1][1]:.3f}",
                    flush=True,
                )
        for kind in kinds:
            if kind == "gitdns":
                continue
            server = build(kind, big_text, BIG_ORIGIN, start_timeout=BIG_START_TIMEOUT)
            try:
                server.start()
                time.sleep(args.settle)
                measure(f"{LABELS[kind]} big", server, big_files[0], args)
            except (ServerError, RuntimeError) as error:
                print(f"{LABELS[kind]} big: FAILED: {error}", flush=True)
                failed += 1
            finally:
                server.stop()
        by_rate = statistics.median(rate for rate, _ in ratios)
        by_cpu = statistics.median(used for _, used in ratios)
        print(f"gitdns big/small = {by_rate:.3f}, median of {len(ratios)} (target >= 0.8)")
        print(f"gitdns CPU per query, small/big = {by_cpu:.3f}, median of {len(ratios)}")
        return 0 if not failed else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
