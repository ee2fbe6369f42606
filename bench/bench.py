"""dnsperf side by side: gitdns, NSD, BIND (one thread) and ``twistd dns``.

Same generated zone (~1000 names) and the same query file (90 % existing names,
10 % NXDOMAIN) for every server; servers run one after the other, each on its own
127.0.0.x address and a free port, pinned to one CPU; dnsperf (one thread) is
pinned to another CPU.  Every server is started and stopped here, temp dirs removed.

Usage: bench/queries.sh [--duration 20] [--clients 20] [--outstanding 300]
                        [--servers gitdns,nsd,named,twistd-dns] [--names 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.peers import (  # noqa: E402
    Gitdns,
    Named,
    Nsd,
    Server,
    ServerError,
    TwistedNames,
    which,
)

ZONE = "bench.example"  # gitdns file name == zone name
ORIGIN = ZONE + "."

# named listens only on addresses configured on an interface (lo has 127.0.0.1/8
# only), so BIND keeps 127.0.0.1; the others bind their own address directly.
ADDRESSES = {
    "gitdns": "127.0.0.11",
    "nsd": "127.0.0.12",
    "named": "127.0.0.1",
    "twistd-dns": "127.0.0.14",
}
LABELS = {"gitdns": "gitdns", "nsd": "NSD", "named": "BIND", "twistd-dns": "twistd-dns"}


def make_zone(names: int) -> str:
    """A plain zone every server parses (Twisted's BindAuthority is the pickiest:
    one record per line, explicit owner, TTL and class, no quoted strings)."""
    lines = [
        f"$ORIGIN {ORIGIN}",
        "$TTL 3600",
        f"{ORIGIN} 3600 IN SOA ns1.{ORIGIN} hostmaster.{ORIGIN} 1 7200 3600 1209600 300",
        f"{ORIGIN} 3600 IN NS ns1.{ORIGIN}",
        f"{ORIGIN} 3600 IN NS ns2.{ORIGIN}",
        f"{ORIGIN} 3600 IN MX 10 mail.{ORIGIN}",
        f"ns1.{ORIGIN} 3600 IN A 192.0.2.1",
        f"ns2.{ORIGIN} 3600 IN A 192.0.2.2",
        f"mail.{ORIGIN} 3600 IN A 192.0.2.3",
    ]
    for i in range(names):
        owner = f"host{i:04d}.{ORIGIN}"
        lines.append(f"{owner} 3600 IN A 10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}")
        if i % 4 == 0:
            lines.append(f"{owner} 3600 IN AAAA 2001:db8::{i:x}")
        if i % 10 == 0:
            lines.append(f"{owner} 3600 IN MX 10 mail.{ORIGIN}")
    return "\n".join(lines) + "\n"


def make_queries(names: int, count: int = 20000, nx_share: float = 0.10, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < nx_share:
            out.append(f"nx{rng.randrange(10**6):06d}.{ORIGIN} A")
            continue
        i = rng.randrange(names)
        r = rng.random()
        if r < 0.70 or (r < 0.90 and i % 4) or (r >= 0.90 and i % 10):
            qtype = "A"
        elif r < 0.90:
            qtype = "AAAA"
        else:
            qtype = "MX"
        out.append(f"host{i:04d}.{ORIGIN} {qtype}")
    return "\n".join(out) + "\n"


@dataclass
class Result:
    server: str
    qps: float
    lost: str
    rcodes: str
    latency: str


def build(kind: str, text: str, origin: str = ORIGIN, start_timeout: float = 30) -> Server:
    """kind's server for one zone (origin with its trailing dot) on its own address."""
    host = ADDRESSES[kind]
    if kind == "gitdns":
        return Gitdns({origin.rstrip("."): text}, host=host, start_timeout=start_timeout)
    if kind == "nsd":
        # NSD rate-limits responses per client prefix by default (RRL); off for a bench
        return Nsd(
            {origin: text},
            server_count=1,
            host=host,
            start_timeout=start_timeout,
            options=["rrl-ratelimit: 0", "rrl-whitelist-ratelimit: 0"],
        )
    if kind == "named":
        return Named({origin: text}, threads=1, host=host, start_timeout=start_timeout)
    if kind == "twistd-dns":
        return TwistedNames(origin, text, host=host)
    raise ValueError(kind)


def dnsperf(server: Server, queries: Path, args: argparse.Namespace) -> Result:
    cmd = [
        "taskset",
        "-c",
        str(args.client_cpu),
        which("dnsperf") or "dnsperf",
        "-s",
        server.host,
        "-p",
        str(server.port),
        "-d",
        str(queries),
        "-l",
        str(args.duration),
        "-c",
        str(args.clients),
        "-T",
        "1",
        "-q",
        str(args.outstanding),
        "-t",
        "2",
    ]
    if args.max_qps:
        cmd += ["-Q", str(args.max_qps)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    out = r.stdout
    if args.verbose:
        print(out)
    m = re.search(r"Queries per second:\s+([\d.]+)", out)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"dnsperf failed ({r.returncode}):\n{out}\n{r.stderr}")
    lost = re.search(r"Queries lost:\s+(\d+ \([\d.]+%\))", out)
    rcodes = re.search(r"Response codes:\s+(.*)", out)
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    return Result(
        server.name,
        float(m.group(1)),
        lost.group(1) if lost else "?",
        rcodes.group(1) if rcodes else "?",
        f"{float(lat.group(1)) * 1000:.2f} ms" if lat else "?",
    )


def dnsperf_options(p: argparse.ArgumentParser) -> None:
    """The options of a dnsperf run that bench/bigzone.py shares."""
    p.add_argument("--clients", type=int, default=20, help="dnsperf -c")
    p.add_argument("--outstanding", type=int, default=300, help="dnsperf -q")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("-v", "--verbose", action="store_true", help="print dnsperf output")


def prepare_run(args: argparse.Namespace) -> list[str]:
    """Before a dnsperf run: the servers asked for (--servers), checked tools, SIGTERM
    handled and this process on the server's CPU."""
    # SIGTERM (e.g. from `timeout`) unwinds through the finally blocks that stop servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("dnsperf", "taskset"):
        if which(tool) is None:
            sys.exit(f"{tool} not found")
    # Servers (started from this process) inherit this CPU; dnsperf gets its own.
    os.sched_setaffinity(0, {args.server_cpu})
    return [k.strip() for k in args.servers.split(",") if k.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=int, default=20, help="seconds per server")
    p.add_argument("--max-qps", type=int, default=0, help="dnsperf -Q (0: unlimited)")
    p.add_argument("--names", type=int, default=1000, help="names in the zone")
    p.add_argument("--servers", default="gitdns,nsd,named,twistd-dns")
    dnsperf_options(p)
    args = p.parse_args(argv)
    kinds = prepare_run(args)

    work = Path(tempfile.mkdtemp(prefix="gitdns-bench-"))
    try:
        text = make_zone(args.names)
        queries = work / "queries.txt"
        queries.write_text(make_queries(args.names))
        print(
            f"zone {ORIGIN}: {text.count(chr(10))} records, {args.names} names;"
            f" {args.duration}s per server, dnsperf -c {args.clients} -T 1"
            f" -q {args.outstanding}{f' -Q {args.max_qps}' if args.max_qps else ''};"
            f" server on CPU {args.server_cpu}, dnsperf on CPU {args.client_cpu}",
            flush=True,
        )
        results: dict[str, Result] = {}
        for kind in kinds:
            server = build(kind, text)
            try:
                server.start()
                print(f"{LABELS[kind]:<11} {server.host}:{server.port} ...", end=" ", flush=True)
                res = dnsperf(server, queries, args)
                results[kind] = res
                print(
                    f"{res.qps:10.1f} qps  lost {res.lost}  avg {res.latency}  [{res.rcodes}]",
                    flush=True,
                )
            except (ServerError, RuntimeError) as e:
                print(f"{LABELS[kind]}: FAILED: {e}", flush=True)
            finally:
                server.stop()
        if "gitdns" in results:
            g = results["gitdns"].qps
            ratios = [
                f"gitdns/{LABELS[k]} = {g / r.qps:.3f}"
                for k, r in results.items()
                if k != "gitdns" and r.qps
            ]
            if ratios:
                print("ratios: " + ", ".join(ratios))
        return 0 if len(results) == len(kinds) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
