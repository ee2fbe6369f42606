"""Dynamic UPDATE end to end (issue 5): real clients, a real bare remote, real crashes.

BIND ``nsupdate`` and Knot ``knsupdate`` change a running primary; every change must be
served, be one commit in the remote repository with a minimal diff, and reach a BIND
secondary through our NOTIFY. The primary is killed with SIGKILL while updates stream
in, loses its remote, and finds the remote moved by someone else: no acknowledged
update may be lost, and the remote's history is never rewritten.

The remote is always a bare repository (git refuses a push into a checked-out branch);
"remote down" means its directory is renamed away, which is how pushes fail for real.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from tests.peers import (
    ROOT,
    Gitdns,
    Named,
    NamedZone,
    Remote,
    TsigKey,
    dig,
    free_port,
    git,
)

GITDNS = str(ROOT / ".venv" / "bin" / "gitdns")
ZONE = "mirage"
ORIGIN = "mirage."

UPDATE_KEY = TsigKey("personal._update.mirage", "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")
TRANSFER_KEY = TsigKey("reader._transfer.mirage", "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20=")
# Primary 127.0.0.1, secondary 127.0.0.1: we NOTIFY the secondary at --notify-port.
SECONDARY_KEY = TsigKey(
    "127.0.0.1.127.0.0.1._transfer.mirage", "x1TDO5dNVpC1d0ep3Ywc0Jb1Ov/0GqvrPB0/t5GfvCk="
)

# Comments, $ORIGIN/$TTL, an SOA over two lines with a comment, an inherited owner:
# an UPDATE must leave all of that as it is.
ZONE_TEXT = """\
; mirage: a zone kept in git, edited by hand and by UPDATE
$ORIGIN mirage.
$TTL 3600
@\tSOA\tns1\thostmaster\t(
\t\t1\t; serial
\t\t86400 7200 1048576 3600 )
; name servers
@\tNS\tns1
ns1\tA\t127.0.0.1\t; the primary
www\tA\t1.1.1.1
\tTXT\t"web server"
ftp\tA\t192.0.2.21

; mail
mail\tMX\t10 ns1
"""
SERIAL_LINE = "\t\t{}\t; serial"

WAIT = 15.0  # seconds for a change to reach the remote or a secondary
PUSH_WAIT = 45.0  # push retries back off 1, 2, 5, 10, 30 s


def key_line(key: TsigKey) -> str:
    return f"{key.name}. DNSKEY 0 3 163 {key.secret}\n"


KEYS = key_line(UPDATE_KEY) + key_line(TRANSFER_KEY)


# --------------------------------------------------------------------------- helpers


def eventually(check: Callable[[], object], timeout: float = WAIT, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def make_remote(tmp: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """A bare remote holding files on main, and a work clone of it (someone else's)."""
    remote = tmp / "remote.git"
    work = tmp / "work"
    subprocess.run(
        ["git", "init", "-q", "--bare", "-b", "main", str(remote)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    git(tmp, "clone", "-q", str(remote), str(work))
    git(work, "checkout", "-q", "-b", "main")
    for name, text in files.items():
        (work / name).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "push", "-q", "origin", "main")
    return remote, work


def commits(repo: Path, rev: str = "main") -> list[str]:
    return git(repo, "rev-list", rev).split()


def count(repo: Path) -> int:
    return len(commits(repo))


def remote_file(repo: Path, name: str = ZONE, rev: str = "main") -> str:
    return git(repo, "show", f"{rev}:{name}")


def diff_lines(repo: Path, rev: str = "main") -> tuple[list[str], list[str]]:
    """(removed, added) lines of the zone file in commit rev."""
    out = git(repo, "show", "-U0", "--format=", rev, "--", ZONE)
    removed = [
        line[1:] for line in out.splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    added = [
        line[1:] for line in out.splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    return removed, added


def record(line: str) -> tuple[str, str, str]:
    """(owner, TYPE, rdata) of a record line as gitdns writes it: owner [TTL] [IN] TYPE RDATA."""
    tokens = line.split(";", 1)[0].split()
    owner, rest = tokens[0], tokens[1:]
    while rest and (rest[0].isdigit() or rest[0].upper() == "IN"):
        rest = rest[1:]
    return owner, rest[0].upper(), " ".join(rest[1:])


def served(server: Gitdns, name: str, rdtype: str = "A") -> str:
    return dig("+short", f"{name}.{ORIGIN}", rdtype, port=server.port).strip()


def serial(server: Gitdns) -> int:
    return int(dig("+short", ORIGIN, "SOA", port=server.port).split()[2])


def local_head(server: Gitdns) -> str:
    return git(server.data_dir / "repo.git", "rev-parse", "refs/heads/main").strip()


RCODES = "|".join(dns.rcode.to_text(r) for r in dns.rcode.Rcode)


class Client:
    """A command-line UPDATE client: BIND nsupdate or Knot knsupdate."""

    def __init__(self, program: str) -> None:
        self.program = program

    def __call__(
        self, server: Gitdns, commands: Sequence[str], key: TsigKey | None = UPDATE_KEY
    ) -> str:
        """Send one UPDATE; the rcode of the answer (NOERROR, YXDOMAIN...)."""
        cmd = [self.program]
        if key is not None:
            cmd += ["-y", f"{key.algorithm}:{key.name}:{key.secret}"]
        script = "".join(
            f"{c}\n"
            for c in (f"server {server.host} {server.port}", f"zone {ORIGIN}", *commands, "send")
        )
        r = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=30)
        output = r.stdout + r.stderr
        if r.returncode == 0:
            return "NOERROR"
        # nsupdate: "update failed: YXDOMAIN"; knsupdate: "update failed with error 'YXDOMAIN'"
        m = re.search(rf"update failed(?: with error)?:? '?({RCODES})\b", output)
        assert m, f"{self.program} exited {r.returncode} without an rcode:\n{output}"
        return m.group(1)


CLIENTS = [Client("nsupdate"), Client("knsupdate")]


def signed_update(names: Sequence[str], address: str = "10.0.0.1") -> dns.update.UpdateMessage:
    keyring = dns.tsigkeyring.from_text({UPDATE_KEY.name: UPDATE_KEY.secret})
    update = dns.update.UpdateMessage(
        ORIGIN, keyring=keyring, keyname=UPDATE_KEY.name, keyalgorithm=dns.tsig.HMAC_SHA256
    )
    for name in names:
        update.add(name, 300, "A", address)
    return update


def send(server: Gitdns, update: dns.message.Message, timeout: float = 10.0) -> str:
    """Send a dnspython UPDATE over TCP (the answer's TSIG is verified); its rcode."""
    return dns.rcode.to_text(
        dns.query.tcp(update, server.host, port=server.port, timeout=timeout).rcode()
    )


def kill(server: Gitdns) -> None:
    """SIGKILL the primary and everything in its session: no clean shutdown at all."""
    proc = server.proc
    assert proc is not None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def restart(server: Gitdns) -> None:
    """Start the primary again on its data dir (and port), after kill() or stop()."""
    server.stop(remove=False)
    server.start()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[Path, Path]:
    return make_remote(tmp_path, {ZONE: ZONE_TEXT, f"{ZONE}._keys": KEYS})


def primary(gitdns, remote: Path | str, args: Sequence[str] = (), **kw: object) -> Gitdns:
    # The zones given here only seed Gitdns's own repository, which is not used.
    return gitdns({ZONE: ZONE_TEXT}, remote=str(remote), args=list(args), **kw)


# --------------------------------------------------------------------------- 1. clients


def check_commit(
    remote: Path, before: int, removed: set[str], added: set[str], old_serial: int, new_serial: int
) -> None:
    """The remote has exactly one new commit: by the key, naming the zone and the client,
    changing the SOA serial in place and exactly the given lines."""
    assert eventually(lambda: count(remote) >= before + 1), "the commit never reached the remote"
    assert count(remote) == before + 1
    author = git(remote, "log", "-1", "--format=%an", "main").strip()
    assert author in (f"{UPDATE_KEY.name} via gitdns", f"{UPDATE_KEY.name}. via gitdns")
    subject = git(remote, "log", "-1", "--format=%s", "main")
    assert ZONE in subject and "127.0.0.1" in subject, subject
    minus, plus = diff_lines(remote)
    assert SERIAL_LINE.format(old_serial) in minus
    assert SERIAL_LINE.format(new_serial) in plus
    minus.remove(SERIAL_LINE.format(old_serial))
    plus.remove(SERIAL_LINE.format(new_serial))
    assert sorted(minus) == sorted(removed)
    # Added lines are gitdns's own writing: compare them as records.
    assert sorted(map(record, plus)) == sorted(map(record, added)), plus


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.program)
def test_add_replace_delete(gitdns, remote, client: Client) -> None:
    remote, _ = remote
    server = primary(gitdns, remote)
    n = count(remote)

    assert client(server, ["update add host.mirage. 300 A 192.0.2.10"]) == "NOERROR"
    assert served(server, "host") == "192.0.2.10"
    check_commit(remote, n, set(), {"host 300 IN A 192.0.2.10"}, 1, 2)

    # Replace: delete the RRset and add the new address in one UPDATE.
    assert (
        client(server, ["update delete ftp.mirage. A", "update add ftp.mirage. 600 A 192.0.2.22"])
        == "NOERROR"
    )
    assert served(server, "ftp") == "192.0.2.22"
    check_commit(remote, n + 1, {"ftp\tA\t192.0.2.21"}, {"ftp 600 IN A 192.0.2.22"}, 2, 3)

    # Delete one record: the next line inherited its owner, so it gets the name written.
    assert client(server, ["update delete www.mirage. A 1.1.1.1"]) == "NOERROR"
    assert served(server, "www") == ""
    assert served(server, "www", "TXT") == '"web server"'
    check_commit(
        remote, n + 2, {"www\tA\t1.1.1.1", '\tTXT\t"web server"'}, {'www TXT "web server"'}, 3, 4
    )

    # Delete a whole name.
    assert client(server, ["update delete mail.mirage."]) == "NOERROR"
    assert served(server, "mail", "MX") == ""
    check_commit(remote, n + 3, {"mail\tMX\t10 ns1"}, set(), 4, 5)

    # Everything the author wrote and UPDATE did not touch is still there, as written.
    text = remote_file(remote)
    for line in ZONE_TEXT.splitlines():
        if not re.match(r"(www\tA|\tTXT|ftp|mail|\t\t1\t)", line):
            assert line in text.splitlines(), f"{line!r} lost:\n{text}"
    assert serial(server) == 5


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.program)
def test_failed_prerequisites_commit_nothing(gitdns, remote, client: Client) -> None:
    remote, _ = remote
    server = primary(gitdns, remote)
    head, n = local_head(server), count(remote)
    add = "update add new.mirage. 300 A 192.0.2.50"
    cases = [
        ("prereq nxdomain www.mirage.", "YXDOMAIN"),
        ("prereq yxdomain nothere.mirage.", "NXDOMAIN"),
        ("prereq nxrrset www.mirage. A", "YXRRSET"),
        ("prereq yxrrset nothere.mirage. A", "NXRRSET"),
        ("prereq yxrrset www.mirage. A 9.9.9.9", "NXRRSET"),
    ]
    for prereq, rcode in cases:
        assert client(server, [prereq, add]) == rcode, prereq
        # The answer comes after any commit would be on disk: nothing may have moved.
        assert local_head(server) == head, f"{prereq} made a commit"
    assert served(server, "new") == ""
    assert serial(server) == 1
    # Prerequisites that hold: the update goes through.
    assert (
        client(server, ["prereq yxrrset www.mirage. A 1.1.1.1", "prereq nxdomain new.mirage.", add])
        == "NOERROR"
    )
    assert served(server, "new") == "192.0.2.50"
    assert eventually(lambda: count(remote) == n + 1)


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.program)
def test_unauthorised_updates_are_refused(gitdns, remote, client: Client) -> None:
    remote, _ = remote
    server = primary(gitdns, remote)
    head = local_head(server)
    add = ["update add new.mirage. 300 A 192.0.2.50"]
    assert client(server, add, key=None) == "REFUSED"
    assert client(server, add, key=TRANSFER_KEY) == "REFUSED"
    assert local_head(server) == head
    assert served(server, "new") == ""
    time.sleep(1)
    assert count(remote) == 1


# --------------------------------------------------------------------------- 2. secondary


def test_bind_secondary_serves_update_after_our_notify(gitdns, servers, remote) -> None:
    remote, work = remote
    git(work, "pull", "-q")
    (work / f"{ZONE}._keys").write_text(KEYS + key_line(SECONDARY_KEY))
    git(work, "commit", "-q", "-am", "secondary key")
    git(work, "push", "-q")
    port = free_port()
    server = primary(gitdns, remote, args=["--notify-port", str(port)])
    secondary = servers(
        Named(
            [
                NamedZone(
                    ORIGIN,
                    type="secondary",
                    primaries=[Remote(server.host, server.port, SECONDARY_KEY.name)],
                )
            ],
            keys=[SECONDARY_KEY],
            port=port,
            # Only our NOTIFY may make it look again: no refresh timer gets in first.
            options=["min-refresh-time 3600;", "max-refresh-time 3600;"],
        )
    )
    assert served(secondary, "www") == "1.1.1.1"
    assert Client("nsupdate")(server, ["update add host.mirage. 300 A 192.0.2.10"]) == "NOERROR"
    assert eventually(lambda: served(secondary, "host") == "192.0.2.10"), secondary.log_tail()
    assert serial(secondary) == 2
    assert f"NOTIFY {ORIGIN} serial 2 to 127.0.0.1" in server.log()


# --------------------------------------------------------------------------- 3. crash


CRASH_SECONDS = 25.0  # the longest the update stream runs
CLIENT_THREADS = 2
MAX_UPDATES = 3000  # per client thread


class UpdateStream(threading.Thread):
    """Sends signed UPDATEs, one new name each, until told to stop; records the answers."""

    def __init__(self, server: Gitdns, prefix: str) -> None:
        super().__init__(daemon=True, name=f"updates-{prefix}")
        self.server = server
        self.prefix = prefix
        self.stop = threading.Event()
        self.acked: list[str] = []  # names answered NOERROR
        self.other: dict[str, int] = {}  # other rcodes and errors, counted
        self.sent = 0

    def run(self) -> None:
        deadline = time.monotonic() + CRASH_SECONDS
        for i in range(MAX_UPDATES):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            name = f"{self.prefix}{i}"
            self.sent += 1
            try:
                rcode = send(self.server, signed_update([name]), timeout=5)
            except (OSError, EOFError, dns.exception.DNSException) as error:
                rcode = type(error).__name__
                time.sleep(0.05)  # the primary is down: do not spin
            if rcode == "NOERROR":
                self.acked.append(name)
            else:
                self.other[rcode] = self.other.get(rcode, 0) + 1


def query_a(server: Gitdns, name: str) -> bool:
    q = dns.message.make_query(f"{name}.{ORIGIN}", "A")
    for _ in range(3):
        try:
            r = dns.query.udp(q, server.host, port=server.port, timeout=2)
        except dns.exception.Timeout:
            continue
        return r.rcode() == dns.rcode.NOERROR and bool(r.answer)
    return False


def test_sigkill_loses_no_acknowledged_update(gitdns, remote) -> None:
    remote, _ = remote
    seed = int(os.environ.get("GITDNS_CRASH_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    server = primary(gitdns, remote, port=free_port())
    streams = [UpdateStream(server, f"c{k}n") for k in range(CLIENT_THREADS)]
    for s in streams:
        s.start()
    kills = rng.randint(2, 3)
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 2.0))
            kill(server)
            time.sleep(rng.uniform(0.0, 0.3))
            restart(server)
        time.sleep(rng.uniform(0.5, 1.5))  # updates on the last incarnation too
    finally:
        for s in streams:
            s.stop.set()
        for s in streams:
            s.join(15)
    assert not any(s.is_alive() for s in streams), "update stream did not stop"
    acked = [name for s in streams for name in s.acked]
    report = (
        f"seed {seed}, {kills} kills, {sum(s.sent for s in streams)} sent, "
        f"{len(acked)} acked, other: {[s.other for s in streams]}"
    )
    print(report)
    assert len(acked) >= 20, f"too few updates acknowledged to mean anything: {report}"

    # The last incarnation takes updates (a kill must not leave the clone unusable).
    assert send(server, signed_update(["after-crashes"])) == "NOERROR", (
        f"the restarted primary refuses updates ({report}):\n{server.log_tail(15)}"
    )
    acked.append("after-crashes")

    missing = [name for name in acked if not query_a(server, name)]
    assert not missing, f"acknowledged but not served: {missing[:10]} ({report})"

    # libgit2 pushes to a path remote from inside the primary: a kill mid-push leaves
    # the remote's branch locked, as a killed git-receive-pack would. The operator
    # removes the stale lock; then everything must arrive (the lock itself is
    # test_push_failing_for_another_reason_backs_off's business).
    stale = remote / "refs" / "heads" / "main.lock"
    if stale.exists():
        report += ", a kill left the remote's branch locked: lock removed"
        stale.unlink()

    def pushed() -> list[str]:
        text = remote_file(remote)
        names = {line.split()[0] for line in text.splitlines() if line[:1].isalnum()}
        return [name for name in acked if name not in names]

    assert eventually(lambda: not pushed(), timeout=PUSH_WAIT, step=0.5), (
        f"acknowledged but not in the remote's HEAD: {pushed()[:10]} ({report})"
    )
    first = commits(remote)[-1]
    assert git(remote, "log", "-1", "--format=%s", first).strip() == "initial"
    assert "no longer applies" not in server.log()


def test_restart_after_a_kill_mid_commit_takes_updates(gitdns, remote) -> None:
    """A kill while the branch is being moved leaves ``refs/heads/main.lock`` in the
    clone (libgit2 writes the new target there, then renames it). The clone is the
    primary's alone: once restarted it must take updates again, not SERVFAIL for ever."""
    remote, _ = remote
    server = primary(gitdns, remote, port=free_port())
    assert send(server, signed_update(["before"])) == "NOERROR"
    kill(server)
    clone = server.data_dir / "repo.git"
    (clone / "refs" / "heads" / "main.lock").write_text(git(clone, "rev-parse", "refs/heads/main"))
    restart(server)
    assert served(server, "before") == "10.0.0.1"
    assert send(server, signed_update(["after"])) == "NOERROR", server.log_tail(15)
    assert served(server, "after") == "10.0.0.1"


def test_restart_after_a_power_cut_mid_commit_undoes_the_torn_commit(gitdns, remote) -> None:
    """A power cut before a commit's one flush can leave the branch naming objects that
    are empty files (written, never on disk). Such a clone is made here by emptying the
    last commit's new objects: the restarted primary moves the branch back, serves the
    commit before, and takes the same UPDATE again with whole objects, which are pushed."""
    remote, _ = remote
    server = primary(gitdns, remote, port=free_port())
    assert send(server, signed_update(["before"])) == "NOERROR"
    assert eventually(lambda: "before" in remote_file(remote)), server.log_tail()
    away = move_away(remote)
    assert send(server, signed_update(["torn"])) == "NOERROR"
    kill(server)
    clone = server.data_dir / "repo.git"
    kept = git(clone, "rev-parse", "refs/heads/main~1").strip()
    torn = git(clone, "rev-parse", "refs/heads/main").strip()
    blob = git(clone, "rev-parse", f"refs/heads/main:{ZONE}").strip()
    for oid in (torn, blob):
        (clone / "objects" / oid[:2] / oid[2:]).write_bytes(b"")
    away.rename(remote)
    restart(server)
    assert f"moved back from {torn} to {kept}" in server.log(), server.log_tail()
    assert served(server, "before") == "10.0.0.1"
    assert served(server, "torn") == ""
    assert send(server, signed_update(["torn"])) == "NOERROR", server.log_tail(15)
    assert served(server, "torn") == "10.0.0.1"
    assert eventually(lambda: "torn" in remote_file(remote)), server.log_tail()
    git(remote, "fsck", "--strict")
    assert git(remote, "rev-parse", f"main:{ZONE}").strip() == blob


# --------------------------------------------------------------------------- 4. remote down


def move_away(remote: Path) -> Path:
    away = remote.with_name(remote.name + ".away")
    remote.rename(away)
    return away


def test_updates_accepted_while_remote_down_are_pushed_later(gitdns, remote) -> None:
    remote, _ = remote
    server = primary(gitdns, remote)
    away = move_away(remote)
    names = [f"down{i}" for i in range(5)]
    for name in names:
        assert send(server, signed_update([name])) == "NOERROR"
        assert served(server, name) == "10.0.0.1"
    time.sleep(3)  # pushes fail meanwhile, and their retries back off
    away.rename(remote)
    assert eventually(lambda: count(remote) == 1 + len(names), timeout=PUSH_WAIT, step=0.5), (
        server.log_tail()
    )
    text = remote_file(remote)
    assert all(f"\n{name}\t" in text for name in names), text
    assert serial(server) == 1 + len(names)


def test_updates_acked_while_remote_down_are_pushed_after_a_restart(gitdns, remote) -> None:
    """Acknowledged, not pushed, then the primary dies: the next one pushes them."""
    remote, _ = remote
    server = primary(gitdns, remote, port=free_port())
    away = move_away(remote)
    names = [f"down{i}" for i in range(3)]
    for name in names:
        assert send(server, signed_update([name])) == "NOERROR"
    kill(server)
    away.rename(remote)
    restart(server)
    assert all(served(server, name) == "10.0.0.1" for name in names)
    assert eventually(lambda: count(remote) == 1 + len(names), timeout=PUSH_WAIT, step=0.5), (
        server.log_tail()
    )


def test_push_failing_for_another_reason_backs_off(gitdns, remote) -> None:
    """A push refused for another reason than "the remote moved" (here: the branch is
    locked, as a pusher killed mid-push leaves it) is retried with backoff, its reason
    logged, not replayed in a loop; once the lock is gone the update is pushed."""
    remote, _ = remote
    server = primary(gitdns, remote)
    lock = remote / "refs" / "heads" / "main.lock"
    lock.write_text(git(remote, "rev-parse", "main"))
    assert send(server, signed_update(["locked"])) == "NOERROR"
    time.sleep(3)
    log = server.log()
    attempts = log.count("Push rejected") + log.count("Push failed")
    try:
        assert attempts <= 5, f"{attempts} push attempts in 3 s:\n{server.log_tail(12)}"
        assert "main.lock" in log, "the reason the push fails is not logged"
    finally:
        lock.unlink()
    assert eventually(lambda: count(remote) == 2, timeout=PUSH_WAIT, step=0.5), server.log_tail()


# --------------------------------------------------------------------------- 5. conflict


def notify(server: Gitdns) -> str:
    key = f"{UPDATE_KEY.name}:SHA256:{UPDATE_KEY.secret}"
    r = subprocess.run(
        [GITDNS, "notify", server.host, ZONE, "-p", str(server.port), "-k", key],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.stdout + r.stderr


def push_other_change(work: Path, remote: Path, serial_to: int, line: str) -> str:
    """Someone else commits a change to the zone (serial raised) and pushes it to remote."""
    git(work, "pull", "-q", str(remote), "main")
    text = (work / ZONE).read_text()
    text = text.replace(SERIAL_LINE.format(1), SERIAL_LINE.format(serial_to)) + line + "\n"
    (work / ZONE).write_text(text)
    git(work, "commit", "-q", "-am", "someone else's change")
    git(work, "push", "-q", str(remote), "main")
    return git(work, "rev-parse", "HEAD").strip()


def test_remote_moved_meanwhile_both_changes_kept(gitdns, remote) -> None:
    remote, work = remote
    server = primary(gitdns, remote)
    away = move_away(remote)
    ours = ["ours1", "ours2"]
    for name in ours:
        assert send(server, signed_update([name])) == "NOERROR"
    time.sleep(1)  # our pushes fail meanwhile
    other = push_other_change(work, away, 10, "other\tA\t192.0.2.77")
    away.rename(remote)
    assert "NOERROR" in notify(server)

    def done() -> bool:
        text = remote_file(remote)
        return all(f"\n{n}\t" in text for n in ours) and "\nother\tA\t192.0.2.77" in text

    assert eventually(done, timeout=PUSH_WAIT, step=0.5), server.log_tail()
    # Never forced: the other commit is in the remote's history, ours on top of it.
    subprocess.run(
        ["git", "-C", str(remote), "merge-base", "--is-ancestor", other, "main"],
        check=True,
        timeout=30,
    )
    on_top = git(remote, "log", "--format=%an", f"{other}..main").splitlines()
    assert on_top and all(a.endswith("via gitdns") for a in on_top), on_top
    # Served: both changes, and a serial above the one the other commit set.
    assert served(server, "other") == "192.0.2.77"
    assert all(served(server, n) == "10.0.0.1" for n in ours)
    assert serial(server) > 10
    assert SERIAL_LINE.format(serial(server)) in remote_file(remote).splitlines()


def test_update_that_no_longer_applies_is_logged_not_pushed(gitdns, remote) -> None:
    """Replay respects prerequisites: an update that cannot apply on the new head is
    dropped, with its zone and key in the log, and the other commit wins."""
    remote, work = remote
    server = primary(gitdns, remote)
    away = move_away(remote)
    update = signed_update(["taken"], address="10.9.9.9")
    update.absent("taken")
    assert send(server, update) == "NOERROR"
    assert served(server, "taken") == "10.9.9.9"
    other = push_other_change(work, away, 10, "taken\tA\t192.0.2.88")
    away.rename(remote)
    assert "NOERROR" in notify(server)
    assert eventually(lambda: served(server, "taken") == "192.0.2.88", timeout=PUSH_WAIT), (
        server.log_tail()
    )
    assert eventually(lambda: "no longer applies" in server.log())
    lost = next(line for line in server.log().splitlines() if "no longer applies" in line)
    assert ORIGIN in lost and UPDATE_KEY.name in lost, lost
    assert git(remote, "rev-parse", "main").strip() == other
