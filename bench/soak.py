"""Soak: dnsperf at full rate for minutes while UPDATEs and NOTIFYs keep coming.

Usage: .venv/bin/python bench/soak.py [--minutes 3]
Starts its own gitdns-primary (bare remote in a temp dir) on 127.0.0.1 and stops it.
Prints dnsperf's figures, the primary's resident memory at the start and the end, the
number of updates and NOTIFYs sent and their failures, and whether the served zone,
the local clone and the remote agree afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import threading
import time

import dns.exception
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.tsig
import dns.update
from running import git, primary, workdir

SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
KEY = dns.tsig.Key("soak._update.soak.", SECRET)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    seconds = parser.parse_args().minutes * 60
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(workdir("gitdns-soak-"))
        remote, repo = os.path.join(work, "remote.git"), os.path.join(work, "repo")
        git("init", "-q", "--bare", "-b", "main", remote)
        git("init", "-q", "-b", "main", repo)
        with open(os.path.join(repo, "soak"), "w") as file:
            file.write("$ORIGIN soak.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n")
            file.write("@ NS ns1\nns1 A 192.0.2.1\n")
            for i in range(1000):
                file.write(f"h{i} A 10.0.{i >> 8}.{i & 255}\n")
        with open(os.path.join(repo, "soak._keys"), "w") as file:
            file.write(f"soak._update.soak. DNSKEY 0 3 163 {SECRET}\n")
        git("-C", repo, "add", "-A")
        git("-C", repo, "commit", "-q", "-m", "soak")
        git("-C", repo, "push", "-q", remote, "main")
        server, port = stack.enter_context(primary(remote, os.path.join(work, "data"), "soak."))
        queries = os.path.join(work, "queries")
        with open(queries, "w") as file:
            for i in range(1000):
                file.write(f"h{i}.soak A\n" if i % 10 else f"missing{i}.soak A\n")
        start_rss = rss_kb(server.pid)
        stop = threading.Event()
        counts = {"updates": 0, "update failures": 0, "notifies": 0, "notify failures": 0}
        added: list[str] = []

        def updates() -> None:
            n = 0
            while not stop.is_set():
                update = dns.update.UpdateMessage(
                    "soak.", keyring={KEY.name: KEY}, keyname=KEY.name
                )
                update.add(f"u{n}", 300, "A", f"198.51.{n >> 8 & 255}.{n & 255}")
                try:
                    response = dns.query.tcp(update, "127.0.0.1", port=port, timeout=10)
                    ok = response.rcode() == dns.rcode.NOERROR
                except (OSError, dns.exception.DNSException):
                    ok = False
                counts["updates" if ok else "update failures"] += 1
                if ok:
                    added.append(f"u{n}")
                n += 1
                stop.wait(0.1)

        def notifies() -> None:
            while not stop.is_set():
                notify = dns.message.make_query("soak.", "SOA")
                notify.set_opcode(dns.opcode.NOTIFY)
                notify.use_tsig({KEY.name: KEY}, KEY.name)
                try:
                    response = dns.query.udp(notify, "127.0.0.1", port=port, timeout=5)
                    ok = response.rcode() == dns.rcode.NOERROR
                except (OSError, dns.exception.DNSException):
                    ok = False
                counts["notifies" if ok else "notify failures"] += 1
                stop.wait(2.0)

        workers = [threading.Thread(target=updates), threading.Thread(target=notifies)]
        for worker in workers:
            worker.start()
        perf = subprocess.run(
            [
                "dnsperf",
                "-s",
                "127.0.0.1",
                "-p",
                str(port),
                "-d",
                queries,
                "-l",
                str(int(seconds)),
                "-c",
                "4",
                "-q",
                "200",
                "-Q",
                "1000000",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        stop.set()
        for worker in workers:
            worker.join(30)
        end_rss = rss_kb(server.pid)
        for line in perf.stdout.splitlines():
            if re.search(r"Queries (sent|completed|lost)|Queries per second|Response codes", line):
                print(line.strip())
        print(f"resident memory: start {start_rss // 1024} MB, end {end_rss // 1024} MB")
        print(", ".join(f"{name} {value}" for name, value in counts.items()))
        time.sleep(3)
        missing = [
            name
            for name in added
            if not dns.query.udp(
                dns.message.make_query(f"{name}.soak.", "A"), "127.0.0.1", port=port, timeout=2
            ).answer
        ]
        remote_zone = git("--git-dir", remote, "show", "main:soak")
        unpushed = [name for name in added if f"\n{name}\t" not in remote_zone]
        print(
            f"acknowledged updates not served: {len(missing)}, not in the remote: "
            f"{len(unpushed)} (of {len(added)})"
        )


if __name__ == "__main__":
    main()
