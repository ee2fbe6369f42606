"""The README's walkthrough, run as written, so that the tutorial cannot rot.

The shell blocks marked with a ``.. test`` comment run in order, in one fresh home
directory, with bash, as a reader would type them (cd carries over between blocks);
free ports replace 5353 and 9153. The comment's argument says how:

- ``.. test``: the block must succeed; ``.. test: fails``: it must fail;
  ``.. test: eventually``: retried until it succeeds (and prints its output);
- ``.. test: background NAME HOST:PORT ZONE``: started and left running (the reader's
  other shell), ready when HOST:PORT answers an SOA query for ZONE;
- ``.. test: stop NAME``: that background process gets Ctrl-C (SIGINT);
- ``.. test-output`` before a block: lines the previous block must print, in this
  order (white space runs compare equal, and so do any two base64 secrets).

Besides, every ``gitdns`` and ``twistd`` command in any shell block, tested or not,
must parse with the real argument parsers.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from twisted.python import reflect, usage
from twisted.scripts.twistd import ServerOptions

from gitdns.cli import parser as gitdns_parser
from tests.peers import ROOT, free_port, soa_answers, which

README = ROOT / "README.rst"
PORTS = ("5353", "9153")  # as written in the README, replaced by free ports
SECRET = re.compile(r"[A-Za-z0-9+/]{43}=")
DIRECTIVE = re.compile(r"^\.\. (test-output|test)(?::\s*(.*?))?\s*$")
BLOCK_START = re.compile(r"^(\.\. code-block::\s*(\S+)\s*|.*::)\s*$")
START_TIMEOUT = 30.0
EVENTUALLY = 20.0


@dataclass(frozen=True)
class Step:
    kind: str  # run, fails, eventually, background, stop, output
    argument: str
    text: str
    line: int  # in README.rst, for messages


def literal_block(lines: list[str], start: int) -> tuple[str, int] | None:
    """The literal block introduced at or after ``start`` (a ``.. code-block::`` line or
    a paragraph ending in ``::``): its text, dedented, and its first line's index."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    # The introducing paragraph: the first line ending in "::" (or the code-block).
    while index < len(lines) and not BLOCK_START.match(lines[index]):
        if lines[index].startswith(".. test"):
            return None
        index += 1
    index += 1
    body: list[str] = []
    while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
        body.append(lines[index])
        index += 1
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    if not body:
        return None
    indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
    return "\n".join(line[indent:] for line in body) + "\n", index


def steps(text: str) -> list[Step]:
    lines = text.split("\n")
    found: list[Step] = []
    for number, line in enumerate(lines):
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        name, argument = match[1], (match[2] or "").strip()
        words = argument.split()
        if name == "test" and words[:1] == ["stop"]:
            found.append(Step("stop", words[1], "", number + 1))
            continue
        block = literal_block(lines, number + 1)
        assert block is not None, f"README.rst:{number + 1}: no block after {line!r}"
        kind = "output" if name == "test-output" else (words[0] if words else "run")
        assert kind in ("run", "fails", "eventually", "background", "output"), line
        found.append(Step(kind, " ".join(words[1:]), block[0], number + 1))
    return found


def shell_blocks(text: str) -> Iterator[tuple[int, str]]:
    """Every shell block of the README: code-block sh, and literal blocks (::)."""
    lines = text.split("\n")
    for number, line in enumerate(lines):
        match = BLOCK_START.match(line)
        if match is None or (match[2] not in (None, "sh", "shell", "console")):
            continue
        block = literal_block(lines, number)
        if block is not None:
            yield number + 1, block[0]


def commands(script: str) -> Iterator[list[str]]:
    """The gitdns and twistd commands of a script, as argument lists."""
    script = re.sub(r"<<'EOF'\n.*?\nEOF\n", "\n", script, flags=re.DOTALL)  # heredoc bodies
    script = script.replace("\\\n", " ")
    for line in script.split("\n"):
        for part in re.split(r"&&|\|\||[|;]", line.split(" #")[0]):
            try:
                words = shlex.split(part)
            except ValueError:
                continue
            if words[:1] == ["sudo"]:
                words = words[1:]
            if words[:1] in (["gitdns"], ["twistd"]):
                yield words


def normalized(text: str) -> list[str]:
    return [" ".join(SECRET.sub("<secret>", line).split()) for line in text.splitlines()]


def missing_output(expected: str, output: str) -> str | None:
    """The first expected line not printed (in order), or None."""
    printed = normalized(output)
    position = 0
    for line in normalized(expected):
        if not line:
            continue
        try:
            position = printed.index(line, position) + 1
        except ValueError:
            return line
    return None


def port_free_on(port: int, host: str) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


class Walkthrough:
    """One reader's shell session: a home directory, a current directory, and the
    servers left running in other shells."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.cwd = str(home)
        self.state = home.parent / "cwd"
        self.background: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        dns_port = free_port()
        while not port_free_on(dns_port, "127.0.0.2"):
            dns_port = free_port()
        self.ports = {"5353": str(dns_port), "9153": str(free_port())}
        self.env = {
            "HOME": str(home),
            "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
            "/usr/bin:/sbin:/bin",
            "PYTHONPATH": str(ROOT),  # where twistd finds the plugins of this checkout
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",
            "GIT_AUTHOR_NAME": "Reader",
            "GIT_AUTHOR_EMAIL": "reader@example.invalid",
            "GIT_COMMITTER_NAME": "Reader",
            "GIT_COMMITTER_EMAIL": "reader@example.invalid",
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def substitute(self, text: str) -> str:
        for written, port in self.ports.items():
            text = re.sub(rf"\b{written}\b", port, text)
        return text

    def run(self, step: Step) -> tuple[int, str]:
        script = self.substitute(step.text)
        full = f"cd {shlex.quote(self.cwd)}\n{script}\npwd > {shlex.quote(str(self.state))}\n"
        result = subprocess.run(
            ["bash", "-e", "-c", full],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if result.returncode == 0:
            self.cwd = self.state.read_text().strip()
        return result.returncode, result.stdout

    def start(self, step: Step) -> None:
        name, address, zone = step.argument.split()
        host, port = self.substitute(address).rsplit(":", 1)
        log = self.home.parent / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"cd {shlex.quote(self.cwd)}\nexec {self.substitute(step.text)}"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background[name] = process
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"README.rst:{step.line}: {name} exited:\n{log.read_text()}")
            if soa_answers(host, int(port), zone):
                return
            time.sleep(0.1)
        pytest.fail(f"README.rst:{step.line}: {name} did not answer:\n{log.read_text()}")

    def stop(self, name: str, sig: int = signal.SIGINT) -> None:
        process = self.background.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop_all(self) -> None:
        for name in list(self.background):
            with contextlib.suppress(ProcessLookupError):
                self.stop(name, signal.SIGTERM)

    def server_logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{log.read_text()[-4000:]}" for n, log in self.logs.items())


def test_the_walkthrough_runs(tmp_path: Path) -> None:
    for program in ("dig", "nsupdate", "git", "curl"):
        if which(program) is None:
            pytest.fail(f"{program} is not installed: run scripts/setup.sh")
    home = tmp_path / "home"
    home.mkdir()
    session = Walkthrough(home)
    plan = steps(README.read_text())
    try:
        for index, step in enumerate(plan):
            following = plan[index + 1] if index + 1 < len(plan) else None
            expected = following.text if following and following.kind == "output" else None
            where = f"README.rst:{step.line}"
            if step.kind == "background":
                session.start(step)
            elif step.kind == "stop":
                session.stop(step.argument)
            elif step.kind in ("run", "fails", "eventually"):
                deadline = time.monotonic() + (EVENTUALLY if step.kind == "eventually" else 0)
                while True:
                    status, output = session.run(step)
                    succeeded = (status != 0) if step.kind == "fails" else (status == 0)
                    missing = (
                        missing_output(session.substitute(expected), output)
                        if (expected is not None)
                        else None
                    )
                    if (succeeded and missing is None) or time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                assert succeeded, (
                    f"{where}: exit status {status}\n{output}\n{session.server_logs()}"
                )
                assert missing is None, (
                    f"{where}: output lacks {missing!r}:\n{output}\n{session.server_logs()}"
                )
    finally:
        session.stop_all()


def test_the_walkthrough_is_found() -> None:
    """A README edit must not silently drop the tested blocks."""
    plan = steps(README.read_text())
    kinds = [step.kind for step in plan]
    assert len(plan) >= 30
    assert {"run", "fails", "eventually", "background", "stop", "output"} <= set(kinds)
    text = " ".join(step.text for step in plan)
    for command in (
        "gitdns check",
        "gitdns keygen",
        "gitdns notify",
        "gitdns hook install",
        "gitdns-primary",
        "gitdns-secondary",
        "nsupdate",
        "--metrics",
    ):
        assert command in text, command


def _plugin_options(name: str) -> usage.Options:
    from twisted.plugins import gitdns_plugins

    makers = {
        maker.tapname: maker
        for maker in vars(gitdns_plugins).values()
        if getattr(maker, "tapname", None)
    }
    options = makers[name].options()
    options.postOptions = lambda: None  # files named in the README need not exist here
    return options


def test_every_command_in_the_readme_parses() -> None:
    # twistd's own options: declared along its class hierarchy, and opt_ methods.
    twistd_flags = {f"--{n[4:].replace('_', '-')}" for n in dir(ServerOptions) if n[:4] == "opt_"}
    for attribute in ("optFlags", "optParameters"):
        declared: list[list[object]] = []
        reflect.accumulateClassList(ServerOptions, attribute, declared)
        for flag in declared:
            twistd_flags.add(f"--{flag[0]}")
            if flag[1]:
                twistd_flags.add(f"-{flag[1]}")
    checked = 0
    for line, block in shell_blocks(README.read_text()):
        for words in commands(block):
            where = f"README.rst:{line}: {' '.join(words)}"
            if words[0] == "gitdns":
                try:
                    gitdns_parser().parse_args(words[1:])
                except SystemExit as error:
                    pytest.fail(f"{where}: exit {error.code}")
            else:
                plugins = [i for i, w in enumerate(words) if w.startswith("gitdns-")]
                if not plugins or words[plugins[0] - 1] == "grep":
                    continue
                at = plugins[0]
                for word in words[1:at]:
                    if word.startswith("-"):
                        assert word.split("=")[0] in twistd_flags, f"{where}: twistd {word}"
                try:
                    _plugin_options(words[at]).parseOptions(words[at + 1 :])
                except usage.UsageError as error:
                    pytest.fail(f"{where}: {error}")
            checked += 1
    assert checked >= 12
