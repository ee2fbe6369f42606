"""A repository of many zones: start-up time, and time from NOTIFY to serving a change.

Start-up is measured three times on the same repository: the first start (clone, parse
every zone, then store them in the zone cache), a restart that finds them there, and a
restart without the cache; each as the time until the server answers at all (SERVFAIL
while it loads) and until the last zone is served.

Usage: .venv/bin/python bench/reload.py [--zones 10000] [--rounds 5]
Starts its own gitdns-primary on 127.0.0.1 and stops it; prints the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import time

import dns.exception
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.tsig
from running import git, primary, workdir

SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
KEY = dns.tsig.Key("bench._update.", SECRET)


def zone(index: int, serial: int, address: str) -> str:
    return (
        f"$ORIGIN z{index}.example.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 60\n"
        f"@ NS ns1\nns1 A 192.0.2.1\nwww A {address}\nmail MX 10 www\n"
    )


def answer(port: int, qname: str) -> str | None:
    try:
        response = dns.query.udp(
            dns.message.make_query(qname, "A"), "127.0.0.1", timeout=0.5, port=port
        )
    except (OSError, dns.exception.Timeout):
        return None
    if response.rcode() != dns.rcode.NOERROR or not response.answer:
        return None
    return response.answer[0][0].address


def wait_for(port: int, qname: str, expected: str, limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if answer(port, qname) == expected:
            return time.monotonic() - started
        time.sleep(0.002)
    raise SystemExit(f"{qname} did not become {expected} within {limit} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(workdir("gitdns-reload-"))
        repo = os.path.join(work, "repo")
        git("init", "-q", "-b", "main", repo)
        for index in range(arguments.zones):
            with open(os.path.join(repo, f"z{index}.example"), "w") as file:
                file.write(zone(index, 1, "192.0.2.80"))
        with open(os.path.join(repo, "_keys"), "w") as file:
            file.write(f"bench._update. DNSKEY 0 3 163 {SECRET}\n")
        git("-C", repo, "add", "-A")
        git("-C", repo, "commit", "-q", "-m", "zones")
        last = f"z{arguments.zones - 1}.example."
        data = os.path.join(work, "data")
        cache = os.path.join(data, "zone-cache")
        starts = (
            ("first start (clone, parse every zone)", False),
            ("restart with the zone cache", False),
            ("restart, cold (zone cache removed)", True),
        )
        for label, cold in starts:
            if cold:
                shutil.rmtree(cache)
            timings: dict[str, float] = {}
            with primary(repo, data, last, timings=timings):
                print(
                    f"{arguments.zones} zones, {label}: answering (SERVFAIL) after "
                    f"{timings['listening']:.2f} s, serving {last} after "
                    f"{timings['serving']:.2f} s",
                    flush=True,
                )
                # The zones parsed are stored after they are served: let that finish.
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline and (
                    not os.path.isdir(cache) or len(os.listdir(cache)) < arguments.zones
                ):
                    time.sleep(0.2)
        _, port = stack.enter_context(primary(repo, data, last))
        times = []
        for round_ in range(arguments.rounds):
            index = (round_ * 7919) % arguments.zones
            address = f"198.51.100.{round_ + 1}"
            with open(os.path.join(repo, f"z{index}.example"), "w") as file:
                file.write(zone(index, 2 + round_, address))
            git("-C", repo, "commit", "-q", "-am", f"change z{index}")
            notify = dns.message.make_query(f"z{index}.example.", "SOA")
            notify.set_opcode(dns.opcode.NOTIFY)
            notify.use_tsig({KEY.name: KEY}, KEY.name)
            sent = time.monotonic()
            dns.query.udp(notify, "127.0.0.1", port=port, timeout=5)
            wait_for(port, f"www.z{index}.example.", address, 60)
            times.append(time.monotonic() - sent)
        times.sort()
        print(
            f"NOTIFY to serving the change, one zone of {arguments.zones} changed: "
            f"median {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms "
            f"(target < 200 ms)"
        )


if __name__ == "__main__":
    main()
