"""What the benchmark scripts share: a gitdns-primary of their own on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import dns.exception
import dns.message
import dns.query

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(*args: str) -> str:
    """git with a fixed identity and no background auto-gc (it would race a clone)."""
    return subprocess.run(
        ["git", "-c", "gc.auto=0", *args],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, **GIT_IDENTITY),
    ).stdout


def zone_repo(work: str, filename: str, text: str) -> str:
    """A repository work/repo whose one commit holds filename with text; its path."""
    repo = os.path.join(work, "repo")
    git("init", "-q", "-b", "main", repo)
    with open(os.path.join(repo, filename), "w") as file:
        file.write(text)
    git("-C", repo, "add", "-A")
    git("-C", repo, "commit", "-q", "-m", "zone")
    return repo


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[str]:
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def primary(
    remote: str,
    data_dir: str,
    zone: str,
    timeout: float = 600,
    timings: dict | None = None,
    log: str | None = None,
) -> Iterator[tuple]:
    """A gitdns-primary serving remote on 127.0.0.1: yields (process, port) once zone's SOA
    answers; stopped (SIGTERM, then SIGKILL) on the way out.

    timings, if given, gets the seconds from the start until anything answered
    ("listening": SERVFAIL while it loads counts) and until zone's SOA did ("serving").
    log, if given, is a file that gets the server's log.
    """
    port = free_port()
    started = time.monotonic()
    output = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    server = subprocess.Popen(
        [
            os.path.join(ROOT, ".venv", "bin", "twistd"),
            "-n",
            "--pidfile=",
            "gitdns-primary",
            "--remote",
            remote,
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            data_dir,
        ],
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    if log is not None:
        output.close()
    try:
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(zone, "SOA")
        while True:
            if server.poll() is not None:
                raise SystemExit(f"gitdns-primary exited with {server.returncode}")
            try:
                # Short when timing: a query sent before the port is bound is lost.
                wait = 0.2 if timings is not None else 1
                response = dns.query.udp(query, "127.0.0.1", port=port, timeout=wait)
            except (OSError, dns.exception.Timeout):
                response = None
            if response is not None and timings is not None:
                timings.setdefault("listening", time.monotonic() - started)
            if response is not None and response.answer:
                if timings is not None:
                    timings["serving"] = time.monotonic() - started
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"gitdns-primary did not serve {zone} within {timeout} s")
            time.sleep(0.01 if timings is not None else 0.2)
        yield server, port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def wait_for_log(log: str, text: str, timeout: float = 600) -> str:
    """The first line of the server log file log that holds text, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log) as file:
            for line in file:
                if text in line:
                    return line
        time.sleep(0.1)
    raise SystemExit(f"no {text!r} in the server log within {timeout} s")
