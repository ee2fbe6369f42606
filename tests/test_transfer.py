"""Zone transfers under TSIG against real clients: dig, kdig and a BIND secondary."""

from __future__ import annotations

import socket
import subprocess
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.renderer
import dns.tsig
import dns.zone
from twisted.python.monkey import MonkeyPatcher

from tests.peers import MIRAGE as BASE_MIRAGE
from tests.peers import Named, NamedZone, Remote, TsigKey, dig, kdig

SECRET = "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="
TRANSFER = TsigKey("127.0.0.1.127.0.0.1._transfer.mirage", SECRET)
MIRAGE = (
    BASE_MIRAGE
    + """\
*.wild  TXT     "wildcard"
sub     NS      ns.sub
ns.sub  A       192.0.2.1
mail    MX      10 www
"""
)
KEYS = f"{TRANSFER.name}. DNSKEY 0 3 163 {SECRET}\n"


def axfr_with(tool: str, server, key: str) -> str:
    """stdout and stderr of dig/kdig -y KEY mirage AXFR (kdig reports TSIG errors on stderr)."""
    result = subprocess.run(
        [tool, f"@{server.host}", "-p", str(server.port), "-y", key, "mirage", "AXFR"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout + result.stderr


def test_dig_and_kdig_axfr_with_tsig(gitdns) -> None:
    server = gitdns({"mirage": MIRAGE}, files={"mirage._keys": KEYS})
    good = f"hmac-sha256:{TRANSFER.name}:{SECRET}"
    for tool in ("dig", "kdig"):
        out = axfr_with(tool, server, good)
        records = [line for line in out.splitlines() if line and not line.startswith(";")]
        soas = [line for line in records if "\tSOA\t" in line or " SOA " in line]
        assert len(soas) == 2, out
        assert any("ns.sub.mirage." in line for line in records), out

        wrong_secret = f"hmac-sha256:{TRANSFER.name}:{'A' * 43}="
        assert "BADSIG" in axfr_with(tool, server, wrong_secret)
        wrong_algorithm = f"hmac-sha512:{TRANSFER.name}:{SECRET}"
        assert "BADKEY" in axfr_with(tool, server, wrong_algorithm)
        unknown = f"hmac-sha256:stranger._transfer.mirage:{SECRET}"
        assert "BADKEY" in axfr_with(tool, server, unknown)
    no_key = dig("mirage", "AXFR", port=server.port)
    assert "Transfer failed" in no_key
    assert " SOA " not in no_key and "\tSOA\t" not in no_key
    assert "AXFR of mirage. serial 1 to 127.0.0.1 (key " + TRANSFER.name in server.log()
    assert SECRET not in server.log()


def test_replayed_request_outside_fudge_is_badtime(gitdns) -> None:
    server = gitdns({"mirage": MIRAGE}, files={"mirage._keys": KEYS})
    name = dns.name.from_text(TRANSFER.name)
    key = dns.tsig.Key(name, SECRET, dns.tsig.HMAC_SHA256)
    query = dns.message.make_query("mirage.", "AXFR")
    query.use_tsig({name: key}, name)

    class TenMinutesAgo:
        @staticmethod
        def time() -> float:
            return time.time() - 600

    old = MonkeyPatcher(
        (dns.renderer, "time", TenMinutesAgo), (dns.message, "time", TenMinutesAgo)
    ).runWithPatches(query.to_wire)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(len(old).to_bytes(2, "big") + old)
        response, _ = dns.query.receive_tcp(sock, expiration=time.time() + 5, keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH
    assert response.tsig[0].error == dns.rcode.BADTIME
    assert not response.answer


def test_bind_secondary_transfers_our_zone(gitdns, servers) -> None:
    primary = gitdns({"mirage": MIRAGE}, files={"mirage._keys": KEYS})
    secondary = servers(
        Named(
            [
                NamedZone(
                    "mirage",
                    type="secondary",
                    primaries=[Remote(primary.host, primary.port, TRANSFER.name)],
                    options=["allow-transfer { any; };"],
                )
            ],
            keys=[TRANSFER],
        )
    )
    ours = dns.zone.from_xfr(
        dns.query.xfr(
            primary.host,
            "mirage",
            port=primary.port,
            keyring={
                dns.name.from_text(TRANSFER.name): dns.tsig.Key(
                    TRANSFER.name, SECRET, dns.tsig.HMAC_SHA256
                )
            },
            keyname=TRANSFER.name,
        )
    )
    theirs = dns.zone.from_xfr(dns.query.xfr(secondary.host, "mirage", port=secondary.port))
    assert ours.to_text(sorted=True) == theirs.to_text(sorted=True)


def test_big_zone_axfr(gitdns) -> None:
    records = "".join(
        f"h{i} 300 IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(100_000)
    )
    server = gitdns({"mirage": MIRAGE + records}, files={"mirage._keys": KEYS})
    started = time.monotonic()
    out = kdig(
        "-y",
        f"hmac-sha256:{TRANSFER.name}:{SECRET}",
        "mirage",
        "AXFR",
        port=server.port,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    summary = [line for line in out.splitlines() if line.startswith(";; Received")]
    assert summary, out[-2000:]
    # ";; Received N B (M messages, R records)"
    assert "100009 records" in summary[0], summary
    print(f"100,000-record AXFR with TSIG: {elapsed:.2f} s, {summary[0]}")
