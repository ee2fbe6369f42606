"""UPDATE throughput and answer latency of gitdns-primary (issue 5).

For each zone size (default 1,000 and 100,000 records) a bare remote is made, a
primary started on it (127.0.0.1, a free port, its own data dir), and CLIENTS threads
send TSIG-signed UPDATEs over TCP (dnspython, one connection per client, one UPDATE
in flight per client), each adding a new name, for DURATION seconds. Every answer
counts only when NOERROR, which gitdns sends once the commit is durable (fsync).
Printed per zone: updates/s, latency median and p99, errors, and how long the
asynchronous pushes took to catch up after the last answer. The primary is stopped
and its files removed after each run.

Usage: bench/updates.sh [--duration 10] [--clients 4] [--sizes 1000,100000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.dummy
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.exception  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.tsig  # noqa: E402
import dns.tsigkeyring  # noqa: E402
import dns.update  # noqa: E402

from tests.peers import Gitdns, git  # noqa: E402

ZONE = "bench.example"
ORIGIN = ZONE + "."
KEY_NAME = "bench._update.bench.example"
SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
# Targets from issue 5: (updates/s, median ms) per size; None: no target.
TARGETS = {1000: (200.0, 20.0), 100000: (20.0, None)}


def make_zone(records: int) -> str:
    lines = [
        f"; {records} records for the UPDATE benchmark",
        f"$ORIGIN {ORIGIN}",
        "$TTL 3600",
        "@\tSOA\tns1 hostmaster 1 7200 3600 1209600 300",
        "@\tNS\tns1",
        "ns1\tA\t192.0.2.1",
    ]
    for i in range(records - 3):
        lines.append(f"h{i}\tA\t10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    return "\n".join(lines) + "\n"


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)  # seconds, NOERROR answers only
    errors: dict[str, int] = field(default_factory=dict)


def client(
    host: str,
    port: int,
    number: int,
    start: threading.Event,
    stop: threading.Event,
    result: ClientResult,
) -> None:
    keyring = dns.tsigkeyring.from_text({KEY_NAME: SECRET})
    sock: socket.socket | None = None
    start.wait()
    i = 0
    while not stop.is_set():
        i += 1
        update = dns.update.UpdateMessage(
            ORIGIN, keyring=keyring, keyname=KEY_NAME, keyalgorithm=dns.tsig.HMAC_SHA256
        )
        update.add(f"u{number}-{i}", 300, "A", "10.255.0.1")
        began = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection((host, port), timeout=30)
            answer = dns.query.tcp(update, host, port=port, timeout=30, sock=sock)
        except (OSError, EOFError, dns.exception.DNSException) as error:
            name = type(error).__name__
            result.errors[name] = result.errors.get(name, 0) + 1
            if sock is not None:
                sock.close()
                sock = None
            time.sleep(0.1)
            continue
        elapsed = time.perf_counter() - began
        rcode = answer.rcode()
        if rcode == dns.rcode.NOERROR:
            result.latencies.append(elapsed)
        else:
            name = dns.rcode.to_text(rcode)
            result.errors[name] = result.errors.get(name, 0) + 1
    if sock is not None:
        sock.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _client_in_worker(host: str, port: int, number: int, start: Any, stop: Any, out: Any) -> None:
    result = ClientResult()
    client(host, port, number, start, stop, result)
    out.put(result)


def run_clients(
    host: str, port: int, clients: int, duration: float, processes: bool
) -> tuple[list[ClientResult], float]:
    """clients send UPDATEs for duration seconds: threads of this process, or processes
    (as independent clients are: each parses and signs on its own, not sharing one
    interpreter's lock). multiprocessing.dummy gives threads the same interface."""
    kind: Any = multiprocessing.get_context("fork") if processes else multiprocessing.dummy
    start, stop, out = kind.Event(), kind.Event(), kind.Queue()
    workers = [
        kind.Process(target=_client_in_worker, args=(host, port, n, start, stop, out))
        for n in range(clients)
    ]
    for worker in workers:
        worker.start()
    began = time.perf_counter()
    start.set()
    time.sleep(duration)
    stop.set()
    results = [out.get(timeout=60) for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join(60)
    return results, elapsed


def run(
    records: int, duration: float, clients: int, verbose: bool, processes: bool
) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="gitdns-bench-updates-"))
    server: Gitdns | None = None
    try:
        text = make_zone(records)
        keys = f"{KEY_NAME}. DNSKEY 0 3 163 {SECRET}\n"
        remote = tmp / "remote.git"
        work = tmp / "work"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        (work / ZONE).write_text(text)
        (work / f"{ZONE}._keys").write_text(keys)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "initial")
        git(work, "push", "-q", str(remote), "main")
        server = Gitdns(
            {ZONE: "; unused\n"}, remote=str(remote), ready_zone=ORIGIN, start_timeout=120.0
        )
        server.start()
        # Warm up: one update, so first-use costs are not measured.
        warm = ClientResult()
        go, halt = threading.Event(), threading.Event()
        go.set()
        t = threading.Thread(target=client, args=(server.host, server.port, 99, go, halt, warm))
        t.start()
        deadline = time.monotonic() + 60
        while not warm.latencies and not warm.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        halt.set()
        t.join(60)

        results, elapsed = run_clients(server.host, server.port, clients, duration, processes)
        latencies = [x for r in results for x in r.latencies]
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r.errors.items():
                errors[k] = errors.get(k, 0) + v
        # How long the asynchronous pushes need to catch up with what was answered.
        local = server.data_dir / "repo.git"
        head = git(local, "rev-parse", "refs/heads/main").strip()
        waited = time.perf_counter()
        pushed = None
        while time.perf_counter() - waited < 120:
            if git(remote, "rev-parse", "main").strip() == head:
                pushed = time.perf_counter() - waited
                break
            time.sleep(0.1)
        local_commits = int(git(local, "rev-list", "--count", "refs/heads/main"))
        if verbose:
            print(server.log_tail(10), file=sys.stderr)
        return {
            "records": records,
            "updates": len(latencies),
            "seconds": elapsed,
            "rate": len(latencies) / elapsed,
            "median_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "p99_ms": percentile(latencies, 99) * 1000 if latencies else float("nan"),
            "errors": errors,
            "push_lag": pushed,
            "commits": local_commits - 1,
        }
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per zone")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="clients as processes, not threads of this one (independent clients)",
    )
    parser.add_argument("--sizes", default="1000,100000", help="zone sizes in records")
    parser.add_argument("-v", "--verbose", action="store_true", help="print server log tails")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"gitdns UPDATE benchmark: {args.clients} clients "
        f"({'processes' if args.processes else 'threads'}) over TCP, TSIG hmac-sha256, "
        f"{args.duration:g} s per zone, bare remote on local disk"
    )
    print(
        f"{'records':>8} {'updates':>8} {'upd/s':>8} {'median':>9} {'p99':>9} "
        f"{'commits':>8} {'push lag':>9}  target  errors"
    )
    failed = False
    for size in sizes:
        r = run(size, args.duration, args.clients, args.verbose, args.processes)
        rate_target, median_target = TARGETS.get(size, (None, None))
        ok = (rate_target is None or r["rate"] >= rate_target) and (
            median_target is None or r["median_ms"] <= median_target
        )
        target = ("" if rate_target is None else f">={rate_target:g}/s") + (
            "" if median_target is None else f",<={median_target:g}ms"
        )
        verdict = f"{target} {'met' if ok else 'MISSED'}" if target else "-"
        failed |= not ok
        lag = "never" if r["push_lag"] is None else f"{r['push_lag']:.1f} s"
        print(
            f"{size:>8} {r['updates']:>8} {r['rate']:>8.1f} {r['median_ms']:>7.1f}ms "
            f"{r['p99_ms']:>7.1f}ms {r['commits']:>8} {lag:>9}  {verdict}  "
            f"{r['errors'] or '-'}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
