"""`gitdns hook install` in real repositories: pre-receive refuses broken pushes,
post-receive NOTIFYs a running gitdns-primary, pre-commit refuses broken commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers import ROOT, commit, dig, eventually, git, git_env, make_repo

GITDNS = str(ROOT / ".venv" / "bin" / "gitdns")
SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
KEY = f"personal._update.mirage:SHA256:{SECRET}"
KEYS = f"personal._update.mirage. DNSKEY 0 3 163 {SECRET}\n"
ZERO = "0" * 40


def mirage(serial: int, www: str = "1.1.1.1", extra: str = "") -> str:
    return (
        "$ORIGIN mirage.\n$TTL 3600\n"
        f"@\tSOA\tns1\thostmaster\t{serial}\t86400\t7200\t1048576\t3600\n"
        f"@\tNS\tns1\nns1\tA\t127.0.0.1\nwww\tA\t{www}\n{extra}"
    )


def run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git as peers.git runs it, but returning the result instead of raising."""
    # The hooks must find gitdns by the path they were installed with, not PATH.
    env = dict(git_env(repo), PATH="/usr/bin:/bin")
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60
    )


def install(repo: Path, *flags: str) -> str:
    result = subprocess.run(
        [GITDNS, "hook", "install", *flags, str(repo)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def zones_repository(tmp_path: Path) -> tuple[Path, Path]:
    """A work repository and the bare repository it pushes to, with hooks installed."""
    work = make_repo(tmp_path / "work", {"mirage": mirage(1), "mirage._keys": KEYS})
    bare = tmp_path / "zones.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    git(work, "remote", "add", "origin", str(bare))
    output = install(bare)  # a bare repository gets pre-receive and post-receive
    assert f"installed {bare}/hooks/pre-receive" in output
    assert f"installed {bare}/hooks/post-receive" in output
    assert GITDNS in (bare / "hooks" / "pre-receive").read_text()
    return work, bare


def test_bad_push_refused_good_push_notifies_the_primary(gitdns, tmp_path: Path) -> None:
    work, bare = zones_repository(tmp_path)
    server = gitdns({"mirage": mirage(1)}, files={"mirage._keys": KEYS}, remote=str(bare))
    git(bare, "config", "gitdns.server", server.host)
    git(bare, "config", "gitdns.port", str(server.port))
    git(bare, "config", "gitdns.key", KEY)
    before = git(bare, "rev-parse", "main")

    # Changed records, same serial: refused with check's message.
    commit(work, {"mirage": mirage(1, www="2.2.2.2")}, "forgot the serial")
    pushed = run_git(work, "push", "origin", "main")
    assert pushed.returncode != 0
    assert (
        "remote: mirage:3:22: the zone changed but its serial 1 did not increase"
        " (previous serial 1)" in pushed.stderr
    )
    assert "remote:   hint: increase the serial in the SOA record, e.g. to 2" in pushed.stderr
    assert "pre-receive hook declined" in pushed.stderr
    assert git(bare, "rev-parse", "main") == before

    # A syntax error: refused, naming file, line and column.
    commit(work, {"mirage": mirage(2, www="2.2.2.2", extra="ftp\tCNAM\twww\n")}, "typo")
    pushed = run_git(work, "push", "origin", "main")
    assert pushed.returncode != 0
    assert "remote: mirage:7:5: unknown record type 'CNAM'" in pushed.stderr
    assert "remote:   hint: did you mean CNAME?" in pushed.stderr
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"

    # Fixed: accepted, and post-receive's NOTIFY makes the primary fetch and serve it.
    commit(work, {"mirage": mirage(2, www="2.2.2.2")}, "fixed")
    pushed = run_git(work, "push", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: mirage: ok (zone mirage., serial 1 -> 2, 4 records, 2 added, 2 removed)" in (
        pushed.stderr
    )
    assert f"remote: NOTIFY mirage. to 127.0.0.1 port {server.port}: NOERROR" in pushed.stderr
    assert SECRET not in pushed.stderr
    assert eventually(lambda: dig("+short", "www.mirage", port=server.port).strip() == "2.2.2.2")
    assert "Zone mirage. reloaded, serial 1 -> 2" in server.log()


def test_new_and_deleted_branches_and_key_files(tmp_path: Path) -> None:
    work, _ = zones_repository(tmp_path)

    # A new branch (all-zero old id): every file is checked, as new.
    git(work, "checkout", "-q", "-b", "feature")
    commit(work, {"other": "$TTL 60\n@ SOA ns hostmaster 1 1 1 1 1\n"}, "no NS")
    pushed = run_git(work, "push", "origin", "feature")
    assert pushed.returncode != 0
    assert "remote: other: no NS records at the zone apex other." in pushed.stderr
    assert "remote: mirage: ok (new zone mirage., serial 1, 4 records)" in pushed.stderr
    commit(work, {"other": None}, "drop it")
    assert run_git(work, "push", "origin", "feature").returncode == 0

    # A deleted branch: nothing to check. Tags are not checked.
    assert run_git(work, "push", "origin", "--delete", "feature").returncode == 0
    assert run_git(work, "tag", "v1").returncode == 0
    assert run_git(work, "push", "origin", "v1").returncode == 0

    # Key files: a key outside its file's domain is an error, a removed zone is fine.
    git(work, "checkout", "-q", "main")
    bad_key = KEYS + f"x._update.example. DNSKEY 0 3 163 {SECRET}\n"
    commit(work, {"mirage._keys": bad_key}, "key in the wrong file")
    pushed = run_git(work, "push", "origin", "main")
    assert pushed.returncode != 0
    assert (
        "remote: mirage._keys:2: x._update.example. is outside mirage., the domain of this"
        " key file; ignored" in pushed.stderr
    )
    assert SECRET not in pushed.stderr
    commit(work, {"mirage._keys": None, "mirage": None}, "retire the zone")
    pushed = run_git(work, "push", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: mirage: zone mirage. removed" in pushed.stderr
    # No gitdns.server configured: post-receive says so, and the push succeeds.
    assert "remote: gitdns: no NOTIFY sent: set git config gitdns.server" in pushed.stderr


def test_pre_commit(tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work", {"mirage": mirage(1)})
    assert f"installed {work}/.git/hooks/pre-commit" in install(work)

    (work / "mirage").write_text(mirage(1, www="2.2.2.2"))
    committed = run_git(work, "commit", "-q", "-am", "same serial")  # a temporary index
    assert committed.returncode != 0
    # git shows what a hook prints on stderr.
    assert "mirage:3:22: the zone changed but its serial 1 did not increase" in committed.stderr
    (work / "mirage").write_text(mirage(2, www="2.2.2.2"))
    run_git(work, "add", "mirage")
    committed = run_git(work, "commit", "-q", "-m", "bumped")
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert "mirage: ok (zone mirage., serial 1 -> 2" in committed.stderr

    # Files in subdirectories are not zones: not checked.
    (work / "notes").mkdir()
    (work / "notes" / "todo").write_text("not a zone\n")
    run_git(work, "add", "notes")
    assert run_git(work, "commit", "-q", "-m", "notes").returncode == 0
