"""A real gitdns-primary keeps its parsed zones in --data-dir and a restart uses them."""

from __future__ import annotations

import time
from pathlib import Path

from tests.peers import Gitdns, dig

ZONES = {
    f"z{index}.example": (
        f"$ORIGIN z{index}.example.\n$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n"
        f"@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.{index}\nmail MX 10 www\n"
        f'txt TXT "zone {index}" "second string"\n_sip._udp SRV 0 5 5060 www\n'
        f"v6 AAAA 2001:db8::{index}\nsub NS ns.sub\nns.sub A 192.0.2.53\n"
    )
    for index in range(1, 6)
}


def entries(data_dir: Path) -> list[Path]:
    return [entry for version in (data_dir / "zone-cache").glob("*") for entry in version.iterdir()]


def wait_for_entries(data_dir: Path, count: int) -> list[Path]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = entries(data_dir)
        if len(found) == count and not any(entry.suffix == ".tmp" for entry in found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"zone cache holds {entries(data_dir)}, not {count} entries")


def transfers(server: Gitdns) -> dict[str, str]:
    """Every zone as AXFR shows it (dig's comment lines left out: they hold timings)."""
    shown = {}
    for name in ZONES:
        out = dig("+tcp", "+nocmd", "+nostats", name, "AXFR", port=server.port)
        lines = [line for line in out.splitlines() if line and not line.startswith(";")]
        assert lines, out
        shown[name] = "\n".join(lines)
    return shown


def test_restart_serves_the_cached_zones(gitdns) -> None:
    server = gitdns(ZONES, args=["--axfr", "--zone-cache"], ready_zone="z5.example.")
    first = transfers(server)
    cached = wait_for_entries(server.data_dir, len(ZONES))
    assert "5 zones loaded" in server.log() and "(0 from the zone cache)" in server.log()

    server.stop(remove=False)
    server.start()
    assert transfers(server) == first
    assert "5 zones loaded" in server.log() and "(5 from the zone cache)" in server.log()
    assert dig("+short", "www.z3.example", port=server.port).strip() == "192.0.2.3"

    # A broken entry is parsed again (and said so), and written anew.
    broken = cached[0]
    broken.write_bytes(broken.read_bytes()[:50])
    server.stop(remove=False)
    server.start()
    assert transfers(server) == first
    assert "(4 from the zone cache)" in server.log()
    assert "unusable" in server.log()
    wait_for_entries(server.data_dir, len(ZONES))


def test_no_cache_unless_asked(gitdns) -> None:
    server = gitdns(ZONES, ready_zone="z5.example.")
    assert dig("+short", "www.z3.example", port=server.port).strip() == "192.0.2.3"
    assert not (server.data_dir / "zone-cache").exists()


def test_changed_zone_replaces_its_entry(gitdns) -> None:
    server = gitdns(ZONES, args=["--zone-cache"], ready_zone="z5.example.")
    before = {entry.name for entry in wait_for_entries(server.data_dir, len(ZONES))}
    text = ZONES["z2.example"].replace("7 3600", "8 3600").replace("192.0.2.2\n", "198.51.100.2\n")
    server.commit({"z2.example": text})
    server.stop(remove=False)
    server.start()
    # The start-up fetch brings the change in: its entry replaces the old one.
    deadline = time.monotonic() + 30
    while dig("+short", "www.z2.example", port=server.port).strip() != "198.51.100.2":
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    deadline = time.monotonic() + 30
    while True:
        after = {entry.name for entry in entries(server.data_dir)}
        if len(after) == len(ZONES) and len(after - before) == 1:
            break
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.05)
