"""twistd -n gitdns-primary on a real git repository, queried with dig over UDP and TCP."""

from __future__ import annotations

import subprocess

import pytest

from tests.peers import (
    MIRAGE,
    TWISTD,
    Gitdns,
    TsigKey,
    commit,
    dig,
    eventually,
    free_port,
    make_repo,
)

KEYS = "personal._update.mirage. DNSKEY 0 3 163 kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=\n"
KEY = TsigKey(
    "127.0.0.1.127.0.0.1._transfer.mirage", "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
)


def test_dig_over_udp_and_tcp(gitdns) -> None:
    server = gitdns({"mirage": MIRAGE}, files={"mirage._keys": KEYS})
    for transport in ("+notcp", "+tcp"):
        out = dig(transport, "+short", "www.mirage", "A", port=server.port)
        assert out.strip() == "1.1.1.1", (transport, out)
    full = dig("+tcp", "mirage", "ANY", port=server.port)
    assert "flags: qr aa;" in full
    assert "ns1.mirage.\t\t3600\tIN\tA\t127.0.0.1" in full  # additional section
    assert "status: REFUSED" in dig("www.example.com", "A", port=server.port)
    assert "status: NXDOMAIN" in dig("nope.mirage", "A", port=server.port)


def test_keys_are_never_served(gitdns) -> None:
    server = gitdns({"mirage": MIRAGE}, files={"mirage._keys": KEYS})
    for qname in ("personal._update.mirage", "mirage._keys", "_keys"):
        out = dig(qname, "ANY", port=server.port)
        assert "kJJq" not in out
    assert "personal" not in server.log() and "kJJq" not in server.log()


def test_bad_zone_is_reported_and_others_served(gitdns) -> None:
    broken = "$ORIGIN broken.\n@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 A 1.2.3\n"
    server = gitdns({"mirage": MIRAGE, "broken": broken})
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"
    assert "status: REFUSED" in dig("ns.broken", port=server.port)
    assert "broken:4:" in server.log()


def test_unreachable_remote_serves_existing_clone(gitdns, tmp_path) -> None:
    server = gitdns({"mirage": MIRAGE})
    server.stop(remove=False)
    moved = tmp_path / "moved"
    server.repo.rename(moved)
    server.start()
    try:
        assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"
    finally:
        moved.rename(server.repo)


def test_restart_takes_zones_parsed_by_the_last_run(gitdns) -> None:
    """The zone cache: a restart serves the zones the last run parsed without parsing
    them again; a zone changed meanwhile is parsed once fetched, and its old entry goes."""
    other = MIRAGE.replace("mirage", "other").replace("1.1.1.1", "5.5.5.5")
    server = gitdns({"mirage": MIRAGE, "other": other})
    cache = server.data_dir / "zone-cache"

    def entries() -> set[str]:
        return {path.name for path in cache.iterdir()} if cache.exists() else set()

    assert eventually(lambda: len(entries()) == 2), server.log_tail()
    first = entries()
    server.stop(remove=False)
    server.commit({"other": other.replace("5.5.5.5", "6.6.6.6")})
    server.start()
    assert dig("+short", "www.mirage", port=server.port).strip() == "1.1.1.1"
    assert "2 zones loaded in" in server.log() and "(2 parsed by an earlier run)" in server.log()
    assert eventually(lambda: dig("+short", "www.other", port=server.port).strip() == "6.6.6.6")
    assert eventually(lambda: len(entries() - first) == 1 and len(entries()) == 2), entries()


def test_many_new_zones_are_logged_as_one_line(gitdns) -> None:
    zones = {f"z{i}": MIRAGE.replace("mirage", f"z{i}") for i in range(101)}
    server = gitdns({"mirage": MIRAGE, **zones})
    assert dig("+short", "www.z100", port=server.port).strip() == "1.1.1.1"
    assert "102 new zones loaded" in server.log()
    assert "loaded, serial" not in server.log()


def test_no_clone_and_no_remote_exits_with_one_line(tmp_path) -> None:
    result = subprocess.run(
        [
            TWISTD,
            "-n",
            "--pidfile=",
            "gitdns-primary",
            "--remote",
            str(tmp_path / "missing"),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gitdns-primary: cannot clone ")


def test_branch_selection(tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", {"mirage": MIRAGE})
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "-b", "staging"], check=True)
    commit(repo, {"mirage": MIRAGE.replace("1.1.1.1", "2.2.2.2").replace("\t1\t", "\t2\t")})
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "main"], check=True)
    server = Gitdns({"mirage": MIRAGE}, remote=f"{repo}#staging")
    with server:
        assert dig("+short", "www.mirage", port=server.port).strip() == "2.2.2.2"


def test_privileged_port_then_privileges_dropped(tmp_path) -> None:
    """twistd -u/-g: port 53 is bound as root, then the server runs as nobody, and its
    clone is handed to nobody so that later fetches and commits can write to it."""
    import pwd
    import time

    repo = make_repo(tmp_path / "repo", {"mirage": MIRAGE, "mirage._keys": KEYS})
    data = tmp_path / "data"
    command = [
        TWISTD,
        "-n",
        "--pidfile=",
        "-u",
        "nobody",
        "-g",
        "nogroup",
        "gitdns-primary",
        "--remote",
        str(repo),
        "--listen",
        "127.0.0.1:53",
        "--data-dir",
        str(data),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    nobody = pwd.getpwnam("nobody").pw_uid
    try:
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and dig("+short", "www.mirage", port=53).strip() != "1.1.1.1"
        ):
            time.sleep(0.2)
        assert dig("+short", "www.mirage", port=53).strip() == "1.1.1.1"
        assert uids(server) == [nobody] * 4
        owners = {path.stat().st_uid for path in [data, *data.rglob("*")]}
        assert owners == {nobody}
        assert (data.stat().st_mode & 0o777) == 0o700
    finally:
        stop(server)


@pytest.mark.parametrize(
    "service",
    [
        ["gitdns-secondary", "--key", KEY.cli],
        [
            "gitdns-acme",
            "--key",
            KEY.cli,
            "--primary",
            "127.0.0.1:9",
            "--directory",
            "https://127.0.0.1:9/dir",
        ],
    ],
    ids=["secondary", "acme"],
)
def test_other_services_hand_their_data_to_the_user(tmp_path, service) -> None:
    """twistd -u/-g for gitdns-secondary and gitdns-acme: what they wrote as root before
    the privilege drop (their data directory, the ACME account key) goes to that user."""
    import pwd
    import time

    data = tmp_path / "data"
    port = free_port("127.0.0.1")
    command = [TWISTD, "-n", "--pidfile=", "-u", "nobody", "-g", "nogroup", *service]
    command += ["--listen", f"127.0.0.1:{port}", "--data-dir", str(data)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    nobody = pwd.getpwnam("nobody").pw_uid
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.poll() is None:
            if uids(server) == [nobody] * 4:
                break
            time.sleep(0.2)
        assert server.poll() is None, server.communicate()[0]
        assert uids(server) == [nobody] * 4
        owners = {path.stat().st_uid for path in [data, *data.rglob("*")]}
        assert owners == {nobody}
    finally:
        stop(server)


def uids(process: subprocess.Popen) -> list[int]:
    """Real, effective, saved and file-system user ids of a running process."""
    with open(f"/proc/{process.pid}/status") as status:
        line = next(line for line in status if line.startswith("Uid:"))
    return [int(field) for field in line.split()[1:]]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
