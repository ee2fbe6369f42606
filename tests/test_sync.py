"""The primary follows its repository: signed NOTIFY -> fetch -> reload -> NOTIFY out."""

from __future__ import annotations

import subprocess
import time

from tests.peers import ROOT, Named, NamedZone, Remote, TsigKey, dig, eventually, free_port

GITDNS = str(ROOT / ".venv" / "bin" / "gitdns")
UPDATE_SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
UPDATE_KEY = f"personal._update.mirage:SHA256:{UPDATE_SECRET}"
TRANSFER_SECRET = "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="


def mirage(serial: int, www: str = "1.1.1.1", extra: str = "") -> str:
    return (
        "$ORIGIN mirage.\n$TTL 3600\n"
        f"@\tSOA\tns1\thostmaster\t{serial}\t86400\t7200\t1048576\t3600\n"
        "@\tNS\tns1\nns1\tA\t127.0.0.1\n"
        f"www\tA\t{www}\n{extra}"
    )


KEYS = f"personal._update.mirage. DNSKEY 0 3 163 {UPDATE_SECRET}\n"


def notify(server, key: str | None = UPDATE_KEY, zone: str = "mirage") -> str:
    command = [GITDNS, "notify", server.host, zone, "--port", str(server.port)]
    if key:
        command += ["--key", key]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


def www(server, zone: str = "mirage") -> str:
    return dig("+short", f"www.{zone}", "A", port=server.port).strip()


def test_signed_notify_fetches_and_reloads(gitdns) -> None:
    server = gitdns({"mirage": mirage(1)}, files={"mirage._keys": KEYS})
    server.commit({"mirage": mirage(2, www="2.2.2.2")})
    assert "REFUSED" in notify(server, key=None)
    assert "refused: not signed" in server.log()
    time.sleep(0.5)
    assert www(server) == "1.1.1.1", "an unsigned NOTIFY must not trigger a fetch"
    assert "NOERROR" in notify(server)
    assert eventually(lambda: www(server) == "2.2.2.2")
    assert "Zone mirage. reloaded, serial 1 -> 2" in server.log()


def test_broken_zone_keeps_last_good_copy_until_fixed(gitdns) -> None:
    server = gitdns({"mirage": mirage(1)}, files={"mirage._keys": KEYS})
    server.commit({"mirage": mirage(2, www="2.2.2.2") + "oops IN A 1.2.3\n"})
    notify(server)
    assert eventually(lambda: "Zone not loaded: mirage:7:11: bad IPv4 address" in server.log())
    assert www(server) == "1.1.1.1"
    server.commit({"mirage": mirage(3, www="3.3.3.3")})
    notify(server)
    assert eventually(lambda: www(server) == "3.3.3.3")


def test_zones_added_and_removed(gitdns) -> None:
    server = gitdns({"mirage": mirage(1)}, files={"_keys": KEYS.replace(".mirage.", ".")})
    root_key = f"personal._update:SHA256:{UPDATE_SECRET}"
    server.commit({"example": mirage(1, www="4.4.4.4").replace("mirage.", "example.")})
    notify(server, key=root_key, zone="example")
    assert eventually(lambda: www(server, "example") == "4.4.4.4")
    server.commit({"example": None})
    notify(server, key=root_key, zone="example")
    assert eventually(lambda: "REFUSED" in dig("www.example", port=server.port))
    assert "Zone example. removed" in server.log()


def test_unchanged_serial_is_served_with_a_warning(gitdns) -> None:
    server = gitdns({"mirage": mirage(5)}, files={"mirage._keys": KEYS})
    server.commit({"mirage": mirage(5, www="5.5.5.5")})
    notify(server)
    assert eventually(lambda: www(server) == "5.5.5.5")
    assert "Zone mirage. changed but its serial 5 did not increase" in server.log()


def test_key_changes_take_effect_on_reload(gitdns) -> None:
    server = gitdns({"mirage": mirage(1)}, files={"mirage._keys": KEYS})
    transfer = f"hmac-sha256:new._transfer.mirage:{TRANSFER_SECRET}"
    assert "BADKEY" in dig("-y", transfer, "mirage", "AXFR", port=server.port)
    server.commit(
        {"mirage._keys": KEYS + f"new._transfer.mirage. DNSKEY 0 3 163 {TRANSFER_SECRET}\n"}
    )
    notify(server)
    assert eventually(
        lambda: "XFR size: 5 records" in dig("-y", transfer, "mirage", "AXFR", port=server.port)
    )
    server.commit({"mirage._keys": KEYS})
    notify(server)
    assert eventually(lambda: "BADKEY" in dig("-y", transfer, "mirage", "AXFR", port=server.port))


def test_bind_secondary_hears_our_notify(gitdns, servers) -> None:
    """BIND on 127.0.0.1:PORT is the secondary named by the key; we NOTIFY it there."""
    key = TsigKey("127.0.0.1.127.0.0.1._transfer.mirage", TRANSFER_SECRET)
    keys = KEYS + f"{key.name}. DNSKEY 0 3 163 {TRANSFER_SECRET}\n"
    port = free_port()
    primary = gitdns(
        {"mirage": mirage(1)}, files={"mirage._keys": keys}, args=["--notify-port", str(port)]
    )
    secondary = servers(
        Named(
            [
                NamedZone(
                    "mirage",
                    type="secondary",
                    primaries=[Remote(primary.host, primary.port, key.name)],
                )
            ],
            keys=[key],
            port=port,
            # Only our NOTIFY may make it look again: no refresh timer gets in first.
            options=["min-refresh-time 3600;", "max-refresh-time 3600;"],
        )
    )
    assert www(secondary) == "1.1.1.1"
    primary.commit({"mirage": mirage(2, www="2.2.2.2")})
    assert "NOERROR" in notify(primary)
    assert eventually(lambda: www(secondary) == "2.2.2.2", timeout=15), secondary.log_tail()
    assert (
        "NOTIFY mirage. serial 2 to 127.0.0.1 (key 127.0.0.1.127.0.0.1._transfer.mirage.)"
        in primary.log()
    )
