"""Is loading a zone from the zone cache faster than parsing its text?

Usage: .venv/bin/python bench/zonecache.py [--lines 275000] [--zones 10000] [--runs 3]
Two cases: one zone of LINES lines as bench/load.sh makes it, and ZONES small zones as
bench/reload.py makes them. Each way of loading runs in a fresh process (best CPU time
of RUNS): parse the text, or load the cache entries (written beforehand).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def big_zone(lines: int) -> str:
    """The zone of bench/load.sh."""
    out = ["$ORIGIN big.example.\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"]
    out.append("@ NS ns1\nns1 A 192.0.2.1\n")
    for i in range(lines - 5):
        kind = i % 3
        if kind == 0:
            out.append(f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        elif kind == 1:
            out.append(f'h{i} TXT "v=spf1 include:_spf.example.com ~all {i}"\n')
        else:
            out.append(f"h{i} MX 10 mail{i % 100}.example.net.\n")
    return "".join(out)


def small_zone(index: int) -> str:
    """A zone of bench/reload.py."""
    return (
        f"$ORIGIN z{index}.example.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n"
        f"@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\nmail MX 10 www\n"
    )


def files(work: str, case: str, arguments: argparse.Namespace) -> list[tuple[str, str]]:
    """(origin, path) of the case's zone files, written on first use."""
    if case == "big":
        texts = [("big.example.", lambda: big_zone(arguments.lines))]
    else:
        texts = [(f"z{i}.example.", lambda i=i: small_zone(i)) for i in range(arguments.zones)]
    directory = os.path.join(work, case)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for origin, make in texts:
        path = os.path.join(directory, origin)
        if not os.path.exists(path):
            with open(path, "w") as out:
                out.write(make())
        paths.append((origin, path))
    return paths


def child(work: str, case: str, mode: str, arguments: argparse.Namespace) -> None:
    """In a fresh process: load the case one way, print the CPU seconds it took."""
    import dns.name

    from gitdns.zonecache import ZoneCache, entry_name
    from gitdns.zones import parse_zone

    cache = ZoneCache(os.path.join(work, "cache"), "bench")
    paths = [(dns.name.from_text(origin), path) for origin, path in files(work, case, arguments)]
    texts = []
    for origin, path in paths:
        with open(path, encoding="utf-8") as text:
            texts.append((origin, path, text.read()))
    started = time.process_time()
    if mode in ("parse", "write"):
        zones = [parse_zone(origin, text, path) for origin, path, text in texts]
    else:
        zones = [cache.get(os.path.basename(path), origin) for origin, path, _ in texts]
        assert all(zones) and cache.hits == len(texts)
    seconds = time.process_time() - started
    if mode == "write":
        # The file's name stands in for its blob id.
        names = [entry_name(os.path.basename(path), origin) for origin, path, _ in texts]
        cache.write_blocking(dict(zip(names, zones, strict=True)))
    print(seconds)


def best(work: str, case: str, mode: str, arguments: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--child", case, mode, "--work", work]
    command += ["--lines", str(arguments.lines), "--zones", str(arguments.zones)]
    runs = 1 if mode == "write" else arguments.runs
    return min(
        float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        for _ in range(runs)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=275_000)
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--work")
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.work, *arguments.child, arguments)
        return
    with tempfile.TemporaryDirectory(prefix="gitdns-zonecache-") as work:
        for case, label in (
            ("big", f"one zone of {arguments.lines} lines"),
            ("small", f"{arguments.zones} zones of 7 lines"),
        ):
            # "write" parses, then writes the entries the "load" runs read.
            best(work, case, "write", arguments)
            parse, load = best(work, case, "parse", arguments), best(work, case, "load", arguments)
            print(
                f"{label}: parse {parse:.2f} s, load from the zone cache {load:.2f} s "
                f"(CPU, best of {arguments.runs}): {load / parse:.2f} of the parse time"
            )


if __name__ == "__main__":
    main()
