"""IXFR for one changed record in a big zone, against the AXFR of that zone.

Usage: .venv/bin/python bench/ixfr.py [--records 200000]
Starts its own gitdns-primary (bare remote in a temp dir), changes one record by a signed
UPDATE, then asks kdig for IXFR from the old serial and for AXFR; prints size and time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.update
from running import git, primary, workdir

SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="


def kdig(port: int, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    out = subprocess.run(
        [
            "kdig",
            "@127.0.0.1",
            "-p",
            str(port),
            "-y",
            f"hmac-sha256:ops._transfer.big:{SECRET}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    elapsed = time.monotonic() - started
    summary = re.search(r";; Received (\d+) B \((\d+) messages, (\d+) records\)", out)
    if summary is None:
        raise SystemExit(f"kdig {' '.join(args)}: no transfer\n{out[-500:]}")
    size, messages, records = summary.groups()
    return elapsed, f"{int(size):,} bytes, {messages} messages, {int(records):,} records"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    count = parser.parse_args().records
    with workdir("gitdns-ixfr-") as work:
        remote, repo = os.path.join(work, "remote.git"), os.path.join(work, "repo")
        git("init", "-q", "--bare", "-b", "main", remote)
        git("init", "-q", "-b", "main", repo)
        with open(os.path.join(repo, "big"), "w") as file:
            file.write("$ORIGIN big.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n")
            file.write("@ NS ns1\nns1 A 192.0.2.1\n")
            for i in range(count):
                file.write(f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        with open(os.path.join(repo, "big._keys"), "w") as file:
            file.write(f"ops._update.big. DNSKEY 0 3 163 {SECRET}\n")
            file.write(f"ops._transfer.big. DNSKEY 0 3 163 {SECRET}\n")
        git("-C", repo, "add", "-A")
        git("-C", repo, "commit", "-q", "-m", "big")
        git("-C", repo, "push", "-q", remote, "main")
        with primary(remote, os.path.join(work, "data"), "big.") as (_, port):
            key = dns.tsig.Key("ops._update.big.", SECRET)
            update = dns.update.UpdateMessage("big.", keyring={key.name: key}, keyname=key.name)
            update.replace("h7", 300, "A", "192.0.2.77")
            response = dns.query.tcp(update, "127.0.0.1", port=port, timeout=60)
            assert response.rcode() == dns.rcode.NOERROR, response
            ixfr_time, ixfr = kdig(port, "big", "IXFR=1")
            axfr_time, axfr = kdig(port, "big", "AXFR")
        print(f"{count:,}-record zone, one record changed:")
        print(f"  IXFR from serial 1: {ixfr_time * 1000:.0f} ms, {ixfr}")
        print(f"  AXFR:               {axfr_time * 1000:.0f} ms, {axfr}")


if __name__ == "__main__":
    main()
