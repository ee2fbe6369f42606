"""gitdns-primary cloning and fetching over ssh from a real sshd, host key always verified."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.peers import (
    TWISTD,
    Sshd,
    commit,
    dig,
    git,
    make_repo,
    ssh_fingerprint,
    ssh_keygen,
    which,
)

MIRAGE = """\
$ORIGIN mirage.
$TTL 3600
@	SOA	ns1	hostmaster	{serial}	86400	7200	1048576	3600
@	NS	ns1
ns1	A	127.0.0.1
www	A	{address}
"""
TWISTD_TIMEOUT = 60.0  # seconds a gitdns-primary that must fail gets to exit


def mirage(serial: int = 1, address: str = "1.1.1.1") -> str:
    return MIRAGE.format(serial=serial, address=address)


@pytest.fixture
def sshd(servers) -> Sshd:
    if which("sshd") is None:
        pytest.fail("OpenSSH sshd is not installed: run scripts/setup.sh")
    return servers(Sshd())


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working repository whose bare clone ``bare(work)`` sshd serves."""
    work = make_repo(tmp_path / "work", {"mirage": mirage()})
    git(work, "clone", "-q", "--bare", str(work), str(tmp_path / "zones.git"))
    git(work, "remote", "add", "origin", str(tmp_path / "zones.git"))
    return work


def bare(work: Path) -> Path:
    return work.parent / "zones.git"


def other_fingerprint(tmp_path: Path) -> str:
    return ssh_fingerprint(ssh_keygen(tmp_path / "other_host_key"))


def fails_to_start(
    sshd: Sshd, work: Path, tmp_path: Path, *args: str, home: Path | None = None
) -> str:
    """Run gitdns-primary that must exit before serving; return its only stderr line."""
    data = tmp_path / "data"
    env = dict(os.environ, HOME=str(home or tmp_path))
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "gitdns-primary", "--remote", sshd.url(bare(work)),
         "--listen", "127.0.0.1:0", "--data-dir", str(data), "--ssh-key", str(sshd.client_key),
         *args],
        capture_output=True, text=True, timeout=TWISTD_TIMEOUT, env=env,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert not (data / "repo.git" / "HEAD").exists()  # nothing cloned
    assert "Accepted publickey" not in sshd.log()  # refused before authenticating
    return lines[0]


@pytest.mark.parametrize("host_key_type", ["ed25519", "ecdsa", "rsa"])
def test_clone_with_pinned_host_key(servers, gitdns, work, host_key_type) -> None:
    sshd = servers(Sshd(host_key_type=host_key_type))
    args = ["--ssh-key", str(sshd.client_key), "--host-key", sshd.fingerprint]
    server = gitdns({"mirage": mirage()}, remote=sshd.url(bare(work)), args=args)
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"
    assert "Accepted publickey" in sshd.log()


def test_wrong_pinned_host_key_exits_with_one_line(sshd, work, tmp_path) -> None:
    wrong = other_fingerprint(tmp_path)
    line = fails_to_start(sshd, work, tmp_path, "--host-key", wrong)
    assert line == (
        f"gitdns-primary: cannot clone {sshd.url(bare(work))}: host key {sshd.fingerprint}"
        f" (ssh-ed25519) offered by 127.0.0.1:{sshd.port} is not the pinned {wrong}"
    )


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_known_hosts_entry(sshd, gitdns, work, tmp_path, hashed) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line() + "\n")
    if hashed:
        subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], check=True,
                       capture_output=True, timeout=30)  # fmt: skip
        assert f":{sshd.port}" not in known_hosts.read_text()
    args = ["--ssh-key", str(sshd.client_key), "--known-hosts", str(known_hosts)]
    server = gitdns({"mirage": mirage()}, remote=sshd.url(bare(work)), args=args)
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"


def test_unknown_host_in_empty_known_hosts(sshd, work, tmp_path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    line = fails_to_start(sshd, work, tmp_path, "--known-hosts", str(known_hosts))
    assert line.endswith(
        f"host key {sshd.fingerprint} (ssh-ed25519) offered by 127.0.0.1:{sshd.port}"
        f" is unknown: {known_hosts} lists no key for [127.0.0.1]:{sshd.port}"
    )


def test_default_known_hosts_is_the_users(sshd, work, tmp_path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    line = fails_to_start(sshd, work, tmp_path, home=home)
    assert line.endswith(f"is unknown: {home}/.ssh/known_hosts lists no key for"
                         f" [127.0.0.1]:{sshd.port}")  # fmt: skip


def test_changed_host_key_and_revoked_key(sshd, work, tmp_path) -> None:
    known_hosts = tmp_path / "known_hosts"
    other = ssh_keygen(tmp_path / "other_host_key").split()
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    line = fails_to_start(sshd, work, tmp_path, "--known-hosts", str(known_hosts))
    assert f"is not the key {known_hosts} lists for [127.0.0.1]:{sshd.port}: " in line
    known_hosts.write_text(f"{sshd.known_hosts_line()}\n@revoked * {sshd.host_public_key}\n")
    line = fails_to_start(
        sshd, work, tmp_path, "--known-hosts", str(known_hosts), "--host-key", sshd.fingerprint
    )
    assert line.endswith(f"is marked @revoked in {known_hosts}:2")


def test_fetch_checks_the_host_key_too(sshd, gitdns, work, tmp_path) -> None:
    args = ["--ssh-key", str(sshd.client_key), "--host-key", sshd.fingerprint]
    server = gitdns({"mirage": mirage()}, remote=sshd.url(bare(work)), args=args)
    server.stop(remove=False)
    commit(work, {"mirage": mirage(2, "2.2.2.2")})
    git(work, "push", "-q", "origin", "main")

    # The clone exists: gitdns serves it and keeps trying to fetch, never from this host.
    wrong = other_fingerprint(tmp_path)
    server.args = ["--ssh-key", str(sshd.client_key), "--host-key", wrong]
    server.start()
    refused = f"offered by 127.0.0.1:{sshd.port} is not the pinned {wrong}"
    deadline = time.monotonic() + 30
    while refused not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"cannot fetch {sshd.url(bare(work))}: host key {sshd.fingerprint}" in server.log()
    assert refused in server.log()
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"

    server.stop(remove=False)
    server.args = args
    server.start()
    deadline = time.monotonic() + 30
    while dig("+short", "www.mirage", port=server.port).strip() != "2.2.2.2":
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)


def test_encrypted_client_key(sshd, gitdns, work, tmp_path) -> None:
    key = tmp_path / "encrypted_rsa"
    sshd.authorize(ssh_keygen(key, "rsa", passphrase="correct horse"))
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "gitdns-primary", "--remote", sshd.url(bare(work)),
         "--ssh-key", str(key)],
        capture_output=True, text=True, timeout=TWISTD_TIMEOUT,
    )  # fmt: skip
    assert result.returncode != 0
    # A usage error: twistd prints the options, then the reason on the last line.
    assert result.stdout.splitlines()[-1].endswith(
        f"--ssh-key {key} is encrypted: give its passphrase in a file with"
        " --ssh-key-passphrase-file"
    )
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse\n")
    args = ["--ssh-key", str(key), "--ssh-key-passphrase-file", str(passphrase),
            "--host-key", sshd.fingerprint]  # fmt: skip
    server = gitdns({"mirage": mirage()}, remote=sshd.url(bare(work)), args=args)
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"
    assert "correct horse" not in server.log()


def test_push_then_notify_over_ssh(sshd, gitdns, work) -> None:
    """The seed's flow: the primary follows its repository over ssh on a signed NOTIFY."""
    secret = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
    commit(work, {"mirage._keys": f"personal._update.mirage. DNSKEY 0 3 163 {secret}\n"})
    git(work, "push", "-q", "origin", "main")
    args = ["--ssh-key", str(sshd.client_key), "--host-key", sshd.fingerprint]
    server = gitdns({"mirage": mirage()}, remote=sshd.url(bare(work)), args=args)
    commit(work, {"mirage": mirage(2, "2.2.2.2")})
    git(work, "push", "-q", "origin", "main")
    notified = subprocess.run(
        [str(Path(TWISTD).parent / "gitdns"), "notify", "127.0.0.1", "mirage",
         "--port", str(server.port), "--key", f"personal._update.mirage:SHA256:{secret}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "NOERROR" in notified.stdout, notified
    deadline = time.monotonic() + 30
    while dig("+short", "www.mirage", port=server.port).strip() != "2.2.2.2":
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)
