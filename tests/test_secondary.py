"""gitdns-secondary against real primaries: BIND (nsupdate, IXFR) and gitdns (NOTIFY, IXFR),
and a primary that goes away (serving from disk, expire, recovery)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.tsig
import dns.zone

from gitdns.prerenderer import QUIET
from tests.conftest import require_named
from tests.peers import MIRAGE as BASE_MIRAGE
from tests.peers import (
    ROOT,
    TWISTD,
    Gitdns,
    Named,
    NamedZone,
    Remote,
    Server,
    TsigKey,
    dig,
    free_port,
    nsupdate,
)

SECRET = "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="
GITDNS = str(ROOT / ".venv" / "bin" / "gitdns")


class GitdnsSecondary(Server):
    """``twistd -n gitdns-secondary --key ... --listen HOST:PORT --data-dir DIR``."""

    name = "gitdns-secondary"

    def __init__(
        self,
        keys: Sequence[TsigKey],
        zone: str,
        primary_port: int,
        args: Sequence[str] = (),
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.keys = list(keys)
        self.zone = zone
        self.primary_port = primary_port
        self.args = list(args)
        self.data_dir = self.dir / "data"

    def ready_zone(self) -> str:
        return self.zone

    def env(self) -> dict[str, str]:
        return Gitdns.env(self)  # type: ignore[arg-type]

    def prepare(self) -> list[str]:
        self.data_dir.mkdir(exist_ok=True)
        keys = [arg for key in self.keys for arg in ("--key", key.cli)]
        return [
            TWISTD,
            "-n",
            "--pidfile=",
            "gitdns-secondary",
            *keys,
            "--listen",
            f"{self.host}:{self.port}",
            "--data-dir",
            str(self.data_dir),
            "--primary-port",
            str(self.primary_port),
            *self.args,
        ]


def two_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds until check() held; AssertionError after timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


def answer(server: Server, qname: str, rdtype: str = "A") -> tuple[int, list[str]]:
    """rcode and the answer's rdata texts (UDP); (-1, []) when nothing came back."""
    try:
        response = server.query(qname, rdtype, timeout=1.0)
    except (dns.exception.DNSException, OSError):
        return -1, []
    return response.rcode(), [rdata.to_text() for rrset in response.answer for rdata in rrset]


def own_log(server: Server) -> str:
    """The server's log without the command lines the harness writes into it."""
    return "\n".join(line for line in server.log().splitlines() if not line.startswith("$ "))


def keyring(key: TsigKey) -> dict[dns.name.Name, dns.tsig.Key]:
    name = dns.name.from_text(key.name)
    return {name: dns.tsig.Key(name, key.secret, key.algorithm)}


def axfr_text(server: Server, zone: str, key: TsigKey) -> str:
    transferred = dns.zone.from_xfr(
        dns.query.xfr(
            server.host, zone, port=server.port, keyring=keyring(key), keyname=key.name, lifetime=20
        )
    )
    return transferred.to_text(sorted=True)


# ---------------------------------------------------------------------------- BIND primary

EXAMPLE = """\
$ORIGIN example.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.1
www A 1.1.1.1
"""
BIND_KEY = TsigKey("127.0.0.1.127.0.0.1._transfer.example", SECRET)


def test_secondary_of_bind_primary_axfr_then_ixfr(servers) -> None:
    require_named()
    bind_port, our_port = two_ports()
    key = f'key "{BIND_KEY.name}"'
    bind = servers(
        Named(
            [
                NamedZone(
                    "example",
                    EXAMPLE,
                    also_notify=[Remote("127.0.0.1", our_port)],
                    options=[
                        f"allow-transfer {{ {key}; }};",
                        f"allow-update {{ {key}; }};",
                        "ixfr-from-differences yes;",
                        "notify-delay 0;",
                        "max-ixfr-ratio unlimited;",
                    ],
                )
            ],
            keys=[BIND_KEY],
            port=bind_port,
        )
    )
    ours = servers(GitdnsSecondary([BIND_KEY], "example.", bind.port, port=our_port))
    assert answer(ours, "www.example.") == (dns.rcode.NOERROR, ["1.1.1.1"])
    assert "AXFR of example. from 127.0.0.1" in ours.log()

    nsupdate(
        bind,
        BIND_KEY,
        "example.",
        "update add new.example. 300 A 2.2.2.2",
        "update delete www.example. A",
    )
    # BIND NOTIFYs us (also-notify); we ask for the SOA and transfer the difference.
    wait_for(lambda: answer(ours, "new.example.") == (dns.rcode.NOERROR, ["2.2.2.2"]), 15)
    assert answer(ours, "www.example.")[0] == dns.rcode.NXDOMAIN
    log = ours.log()
    assert "IXFR of example. from 127.0.0.1" in log, log
    assert "serial 1 -> 2" in log
    assert "AXFR-style" not in log
    assert axfr_text(ours, "example.", BIND_KEY) == axfr_text(bind, "example.", BIND_KEY)
    assert SECRET not in own_log(ours)


# ---------------------------------------------------------------------------- gitdns primary

MIRAGE = (
    BASE_MIRAGE
    + """\
mail	MX	10 www
txt	TXT	"some text" "and more"
*.wild	TXT	"wildcard"
sub	NS	ns.sub
ns.sub	A	192.0.2.1
"""
)
TRANSFER = TsigKey("127.0.0.1.127.0.0.1._transfer.mirage", SECRET)
KEYS = f"{TRANSFER.name}. DNSKEY 0 3 163 {SECRET}\n"


def notify(primary: Server, key: TsigKey, zone: str = "mirage") -> None:
    result = subprocess.run(
        [GITDNS, "notify", primary.host, zone, "-p", str(primary.port), "-k", key.cli],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "NOERROR" in result.stdout, result


def test_secondary_of_gitdns_primary_follows_notify(servers) -> None:
    primary_port, our_port = two_ports()
    primary = servers(
        Gitdns(
            {"mirage": MIRAGE},
            files={"mirage._keys": KEYS},
            args=["--notify-port", str(our_port)],
            port=primary_port,
        )
    )
    metrics_port = free_port()
    ours = servers(
        GitdnsSecondary(
            [TRANSFER],
            "mirage.",
            primary.port,
            port=our_port,
            args=["--metrics", f"127.0.0.1:{metrics_port}"],
        )
    )
    assert axfr_text(ours, "mirage.", TRANSFER) == axfr_text(primary, "mirage.", TRANSFER)
    assert answer(ours, "x.wild.mirage.", "TXT") == (dns.rcode.NOERROR, ['"wildcard"'])

    primary.commit({"mirage": MIRAGE.replace("\t1\t", "\t2\t") + "new\tA\t2.2.2.2\n"})
    notify(primary, TRANSFER)
    elapsed = wait_for(lambda: answer(ours, "new.mirage.") == (dns.rcode.NOERROR, ["2.2.2.2"]), 10)
    assert elapsed < 2.0, elapsed
    log = ours.log()
    assert (
        "IXFR of mirage. from 127.0.0.1 (key 127.0.0.1.127.0.0.1._transfer.mirage.): "
        "serial 1 -> 2" in log
    ), log
    assert axfr_text(ours, "mirage.", TRANSFER) == axfr_text(primary, "mirage.", TRANSFER)
    # The secondary keeps a journal too: its own secondaries get the difference.
    difference = dig(
        "mirage",
        "IXFR=1",
        "-y",
        f"hmac-sha256:{TRANSFER.name}:{SECRET}",
        "+noall",
        "+answer",
        port=ours.port,
    ).split("\n")
    records = [line.split() for line in difference if line and not line.startswith(";")]
    assert [(r[3], r[6] if r[3] == "SOA" else r[4]) for r in records] == [
        ("SOA", "2"),
        ("SOA", "1"),
        ("SOA", "2"),
        ("A", "2.2.2.2"),
        ("SOA", "2"),
    ], difference
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as scraped:
        metrics = scraped.read().decode()
    assert 'gitdns_transfers_in_total{kind="AXFR"} 1.0' in metrics, metrics
    assert 'gitdns_transfers_in_total{kind="IXFR"} 1.0' in metrics, metrics
    assert 'gitdns_zone_serial{zone="mirage."} 2.0' in metrics, metrics

    # Transfers from the secondary need a transfer key; UPDATE is the primary's business.
    assert "Transfer failed" in dig("mirage", "AXFR", port=ours.port)
    update = dns.message.make_query("mirage.", "SOA")
    update.set_opcode(dns.opcode.UPDATE)
    assert dns.query.udp(update, ours.host, port=ours.port, timeout=3).rcode() == dns.rcode.NOTAUTH
    assert SECRET not in own_log(ours)


# ---------------------------------------------------------------------------- primary down

# Refresh and retry 1 s, expire 8 s: a copy not confirmed for 8 s answers SERVFAIL. With
# names enough for its answers to be prerendered (gitdns.prerenderer.MIN_NAMES).
SHORT = MIRAGE.replace("1\t86400\t7200\t1048576\t3600", "1\t1\t1\t8\t3600") + "".join(
    f"h{index}\tA\t10.0.{index >> 8}.{index & 255}\n" for index in range(1000)
)
EXPIRE = 8.0


def test_primary_down_disk_copy_expire_and_recovery(servers) -> None:
    primary_port, our_port = two_ports()
    primary = servers(
        Gitdns(
            {"mirage": SHORT},
            files={"mirage._keys": KEYS},
            args=["--notify-port", str(our_port)],
            port=primary_port,
        )
    )
    ours = servers(GitdnsSecondary([TRANSFER], "mirage.", primary.port, port=our_port))
    assert answer(ours, "www.mirage.") == (dns.rcode.NOERROR, ["1.1.1.1"])
    wait_for(lambda: "Prerendered" in ours.log(), 10)
    # Let one refresh confirm the copy, so the contact time on disk is recent.
    wait_for(lambda: (Path(ours.data_dir) / "mirage.json").exists(), 5)
    time.sleep(1.5)

    primary.stop(remove=False)
    stopped = time.monotonic()
    assert answer(ours, "www.mirage.") == (dns.rcode.NOERROR, ["1.1.1.1"])

    ours.stop(remove=False)
    ours.start()  # ready = answers the SOA, from the copy on disk
    assert time.monotonic() - stopped < EXPIRE - 1, "restart too slow for this expire"
    assert answer(ours, "www.mirage.") == (dns.rcode.NOERROR, ["1.1.1.1"])
    assert "Serving mirage. serial 1 from disk" in ours.log()

    wait_for(lambda: answer(ours, "www.mirage.")[0] == dns.rcode.SERVFAIL, EXPIRE + 10)
    assert time.monotonic() - stopped > EXPIRE - 2.5  # not before expire (minus a refresh)
    assert "Zone mirage. expired" in ours.log()
    assert answer(ours, "mirage.", "SOA")[0] == dns.rcode.SERVFAIL
    # Its prerendered answers are not made again while it stays expired.
    time.sleep(QUIET + 1)
    assert answer(ours, "h7.mirage.")[0] == dns.rcode.SERVFAIL

    # The primary is back: it NOTIFYs its secondaries at start, we serve again.
    primary.start()
    wait_for(lambda: answer(ours, "www.mirage.") == (dns.rcode.NOERROR, ["1.1.1.1"]), 15)
    assert "Zone mirage. confirmed by its primary again" in ours.log()


# ---------------------------------------------------------------------------- dynamic zones

ROOT_KEY = TsigKey("127.0.0.1.127.0.0.1._transfer", SECRET)
OTHER = MIRAGE.replace("mirage.", "other.")


def test_root_key_carries_every_zone_of_the_primary(servers) -> None:
    primary_port, our_port = two_ports()
    primary = servers(
        Gitdns(
            {"mirage": MIRAGE},
            files={"_keys": f"{ROOT_KEY.name}. DNSKEY 0 3 163 {SECRET}\n"},
            args=["--notify-port", str(our_port)],
            port=primary_port,
        )
    )
    # Only a root key: the zones come from the primary's NOTIFYs.
    ours = servers(GitdnsSecondary([ROOT_KEY], "mirage.", primary.port, port=our_port))
    assert answer(ours, "www.mirage.") == (dns.rcode.NOERROR, ["1.1.1.1"])
    assert "Registered with primary 127.0.0.1 for all zones" in ours.log()

    # A zone added to the repository reaches us by NOTIFY; a removed one is dropped.
    primary.commit({"other": OTHER})
    notify(primary, ROOT_KEY)
    wait_for(lambda: answer(ours, "www.other.") == (dns.rcode.NOERROR, ["1.1.1.1"]), 10)
    primary.commit({"mirage": None})
    notify(primary, ROOT_KEY)
    wait_for(lambda: answer(ours, "www.mirage.")[0] == dns.rcode.REFUSED, 10)
    assert "Zone mirage. dropped" in ours.log()
    assert answer(ours, "www.other.") == (dns.rcode.NOERROR, ["1.1.1.1"])

    # What we carry survives a restart, the dropped zone does not come back.
    ours.stop(remove=False)
    ours.start_timeout = 10
    ours.zone = "other."
    ours.start()
    assert answer(ours, "www.other.") == (dns.rcode.NOERROR, ["1.1.1.1"])
    assert answer(ours, "www.mirage.")[0] == dns.rcode.REFUSED
