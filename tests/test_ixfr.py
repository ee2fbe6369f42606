"""A BIND secondary asking our primary for IXFR (request-ixfr yes) gets increments."""

from __future__ import annotations

import subprocess

import dns.name
import dns.query
import dns.tsig
import dns.zone

from tests.peers import (
    Named,
    NamedZone,
    Remote,
    TsigKey,
    dig,
    eventually,
    free_port,
    git,
    nsupdate,
)

UPDATE_SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
UPDATE = TsigKey("personal._update.mirage", UPDATE_SECRET)
TRANSFER = TsigKey(
    "127.0.0.1.127.0.0.1._transfer.mirage", "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="
)
HOSTS = "".join(f"h{i} A 192.0.2.{i}\n" for i in range(1, 60))
MIRAGE = (
    "$ORIGIN mirage.\n$TTL 3600\n@ SOA ns1 hostmaster 1 86400 7200 1048576 3600\n"
    "@ NS ns1\nns1 A 127.0.0.1\n" + HOSTS
)
KEYS = (
    f"personal._update.mirage. DNSKEY 0 3 163 {UPDATE_SECRET}\n"
    f"{TRANSFER.name}. DNSKEY 0 3 163 {TRANSFER.secret}\n"
)


def test_bind_secondary_gets_ixfr(gitdns, servers, tmp_path) -> None:
    remote = tmp_path / "remote.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "mirage").write_text(MIRAGE)
    (work / "mirage._keys").write_text(KEYS)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "zones")
    git(work, "push", "-q", str(remote), "main")
    port = free_port()
    primary = gitdns({"mirage": MIRAGE}, remote=str(remote), args=["--notify-port", str(port)])
    secondary = servers(
        Named(
            [
                NamedZone(
                    "mirage",
                    type="secondary",
                    primaries=[Remote(primary.host, primary.port, TRANSFER.name)],
                    options=["request-ixfr yes;", "allow-transfer { any; };"],
                )
            ],
            keys=[TRANSFER],
            port=port,
            options=["min-refresh-time 3600;", "max-refresh-time 3600;"],
        )
    )
    assert dig("+short", "h1.mirage", port=secondary.port).strip() == "192.0.2.1"
    nsupdate(
        primary,
        UPDATE,
        "mirage",
        "update add new.mirage. 300 A 198.51.100.1",
        "update delete h2.mirage. A",
    )
    assert eventually(
        lambda: dig("+short", "new.mirage", port=secondary.port).strip() == "198.51.100.1"
    ), secondary.log_tail()
    assert "IXFR from 1 of mirage. serial 2 to 127.0.0.1" in primary.log()
    assert dig("+short", "h2.mirage", port=secondary.port).strip() == ""
    key = {
        dns.name.from_text(TRANSFER.name): dns.tsig.Key(
            TRANSFER.name, TRANSFER.secret, dns.tsig.HMAC_SHA256
        )
    }
    ours = dns.zone.from_xfr(
        dns.query.xfr(primary.host, "mirage", port=primary.port, keyring=key, keyname=TRANSFER.name)
    )
    theirs = dns.zone.from_xfr(dns.query.xfr(secondary.host, "mirage", port=secondary.port))
    assert ours.to_text(sorted=True) == theirs.to_text(sorted=True)


def test_journal_kept_over_a_restart(gitdns, tmp_path) -> None:
    """Stopped and started again, the primary still answers IXFR from the serials it
    served before with the differences, not with the whole zone."""
    primary = gitdns({"mirage": MIRAGE, "mirage._keys": KEYS})
    nsupdate(primary, UPDATE, "mirage", "update add new.mirage. 300 A 198.51.100.1")

    def ixfr_from_1() -> list[tuple[str, str]]:
        answer = dig(
            "mirage",
            "IXFR=1",
            "-y",
            f"hmac-sha256:{TRANSFER.name}:{TRANSFER.secret}",
            "+noall",
            "+answer",
            port=primary.port,
        )
        records = [line.split() for line in answer.splitlines() if line and line[0] != ";"]
        return [(r[3], r[6] if r[3] == "SOA" else r[4]) for r in records]

    incremental = [("SOA", "2"), ("SOA", "1"), ("SOA", "2"), ("A", "198.51.100.1"), ("SOA", "2")]
    assert ixfr_from_1() == incremental
    primary.stop(remove=False)
    primary.start()
    assert ixfr_from_1() == incremental, primary.log_tail()
