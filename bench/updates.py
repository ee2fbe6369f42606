"""UPDATE throughput and answer latency of gitdns-primary (issue 5).

For each zone size (default 1,000 and 100,000 records) a bare remote is made, a
primary started on it (127.0.0.1, a free port, its own data dir), and dnsperf -u sends
TSIG-signed UPDATEs over TCP as CLIENTS clients with CLIENTS UPDATEs in flight at most,
each adding a new name, for DURATION seconds. dnsperf is the load generator because
it costs the server's two CPUs little: Python clients (dnspython, one UPDATE in flight
each) spent a core of their own signing and parsing, and their turn-around time was in
every commit cycle. An answer counts only when NOERROR, which gitdns sends once the
commit is durable (fsync); afterwards every name answered NOERROR must be in the
committed zone file. Printed per zone: updates/s, latency median and p99, errors, and
how long the asynchronous pushes took to catch up after the last answer. The primary is
stopped and its files removed after each run.

The figures hang on how fast the kernel creates files (each commit writes a few).
On the development VM that slowed down as its dentry and inode caches grew: a
libgit2 commit took 8.3 ms, and 3.3 ms after `sync; echo 3 > /proc/sys/vm/drop_caches`.
Compare runs made in the same state.

Usage: bench/updates.sh [--duration 10] [--clients 4] [--sizes 1000,100000] [-v]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from shutil import which

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
# More UPDATEs than any run sends: dnsperf stops early when its file runs out.
MOST_PER_SECOND = 2000
# "> NOERROR bench.example. 0.016918": one line per answer with -v, latency in seconds.
ANSWER_LINE = re.compile(r"^> (\S+) \S+ ([\d.]+)$", re.MULTILINE)


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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def warm_up(host: str, port: int) -> None:
    """One UPDATE first, so first-use costs are not measured."""
    keyring = dns.tsigkeyring.from_text({KEY_NAME: SECRET})
    update = dns.update.UpdateMessage(
        ORIGIN, keyring=keyring, keyname=KEY_NAME, keyalgorithm=dns.tsig.HMAC_SHA256
    )
    update.add("warm-up", 300, "A", "10.255.0.1")
    answer = dns.query.tcp(update, host, port=port, timeout=60)
    if answer.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"warm-up UPDATE: {dns.rcode.to_text(answer.rcode())}")


def send_updates(
    server: Gitdns, updates: Path, duration: float, clients: int, verbose: bool
) -> tuple[list[float], dict[str, int], float]:
    """dnsperf -u over TCP: the NOERROR latencies (s), other outcomes counted, run time."""
    command = [
        which("dnsperf") or "dnsperf",
        "-u",
        "-m",
        "tcp",
        "-s",
        server.host,
        "-p",
        str(server.port),
        "-c",
        str(clients),
        "-q",
        str(clients),
        "-n",
        "1",
        "-l",
        f"{duration:g}",
        "-t",
        "30",
        "-y",
        f"hmac-sha256:{KEY_NAME}:{SECRET}",
        "-d",
        str(updates),
        "-v",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    run_time = re.search(r"Run time \(s\):\s+([\d.]+)", result.stdout)
    if result.returncode != 0 or run_time is None:
        raise RuntimeError(f"dnsperf failed ({result.returncode}):\n{result.stderr}")
    if verbose:
        print(result.stdout[result.stdout.find("Statistics:") :], file=sys.stderr)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for outcome, latency in ANSWER_LINE.findall(result.stdout):
        if outcome == "NOERROR":
            latencies.append(float(latency))
        else:
            errors[outcome] = errors.get(outcome, 0) + 1
    return latencies, errors, float(run_time.group(1))


def run(records: int, duration: float, clients: int, verbose: bool) -> dict[str, object]:
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
        updates = tmp / "updates.txt"
        count = int(MOST_PER_SECOND * duration)
        updates.write_text(
            "".join(f"{ORIGIN}\nadd u{i} 300 A 10.255.0.1\nsend\n" for i in range(count))
        )
        server = Gitdns(
            {ZONE: "; unused\n"}, remote=str(remote), ready_zone=ORIGIN, start_timeout=120.0
        )
        server.start()
        warm_up(server.host, server.port)
        latencies, errors, elapsed = send_updates(server, updates, duration, clients, verbose)
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
        # Every acknowledged name is committed (and nothing else was added).
        committed = git(local, "show", f"refs/heads/main:{ZONE}")
        added = len(re.findall(r"^u\d+\s", committed, re.MULTILINE))
        if added != len(latencies):
            errors["acknowledged but not committed"] = len(latencies) - added
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
            "commits": local_commits - 2,
        }
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per zone")
    parser.add_argument(
        "--clients", type=int, default=4, help="dnsperf clients, one UPDATE in flight each"
    )
    parser.add_argument("--sizes", default="1000,100000", help="zone sizes in records")
    parser.add_argument("-v", "--verbose", action="store_true", help="print server log tails")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"gitdns UPDATE benchmark: dnsperf -u, {args.clients} clients over TCP, "
        f"{args.clients} UPDATEs in flight at most, TSIG hmac-sha256, "
        f"{args.duration:g} s per zone, bare remote on local disk"
    )
    print(
        f"{'records':>8} {'updates':>8} {'upd/s':>8} {'median':>9} {'p99':>9} "
        f"{'commits':>8} {'push lag':>9}  target  errors"
    )
    failed = False
    for size in sizes:
        r = run(size, args.duration, args.clients, args.verbose)
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
