"""Real peers for end-to-end tests: BIND ``named``, gitdns ``twistd``, ``dig``/``kdig``.

Everything binds 127.0.0.0/8 only.  Every class here is a context manager whose
``stop()`` is idempotent and always kills what it started (SIGTERM, then SIGKILL to
the process group it created), so a failing test cannot leak a server.  The pytest
fixtures in ``conftest.py`` wrap these so teardown runs even when a test fails.

Nothing is mocked: these start the programs a user would run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TWISTD = str(VENV_BIN / "twistd") if (VENV_BIN / "twistd").exists() else "twistd"

START_TIMEOUT = 30.0  # seconds a server gets to answer its first SOA query
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
PORT_ATTEMPTS = 3  # restarts with a fresh port when ours was taken meanwhile

# Processes still running, so an interpreter exit (e.g. Ctrl-C) cannot leak them.
_LIVE: set[Server] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


def free_port(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port currently free for both UDP and TCP on ``host``."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free on both UDP and TCP on {host} after {attempts} tries")


def which(program: str) -> str | None:
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def eventually(check: Callable[[], object], timeout: float = 10.0) -> bool:
    """Whether check() held within timeout seconds (asked every 0.1 s, once more at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


# The seed's example zone, as most suites serve it (fields separated by tabs: tests
# change the serial with .replace("\t1\t", "\t2\t")); suites add their own records.
MIRAGE = (
    "$ORIGIN mirage.\n$TTL 3600\n"
    "@\tSOA\tns1\thostmaster\t1\t86400\t7200\t1048576\t3600\n"
    "@\tNS\tns1\nns1\tA\t127.0.0.1\nwww\tA\t1.1.1.1\n"
)


def soa_answers(host: str, port: int, zone: str, timeout: float = 0.5) -> bool:
    """True when ``host:port`` answers an SOA query for ``zone`` with an SOA (UDP)."""
    q = dns.message.make_query(zone, dns.rdatatype.SOA)
    q.flags &= ~dns.flags.RD
    try:
        r = dns.query.udp(q, host, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    return r.rcode() == dns.rcode.NOERROR and any(
        rrset.rdtype == dns.rdatatype.SOA for rrset in r.answer
    )


class ServerError(RuntimeError):
    pass


class Server:
    """A child process in its own session and temporary directory.

    Subclasses write their configuration in ``prepare()`` and return the command.
    """

    name = "server"

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = START_TIMEOUT
    ) -> None:
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix=f"gitdns-{self.name}-"))
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.keep_dir = bool(os.environ.get("GITDNS_KEEP_TMP"))

    # -- subclass hooks ---------------------------------------------------
    def prepare(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready_zone(self) -> str:
        """Zone whose SOA must answer before the server counts as started."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> Server:
        last = ""
        for _attempt in range(PORT_ATTEMPTS):
            if self._fixed_port is None:
                self.port = free_port(self.host)
            cmd = self.prepare()
            self._spawn(cmd)
            try:
                self._wait_ready()
                return self
            except ServerError as e:
                last = str(e)
                self.stop(remove=False)
                if self._fixed_port is not None or "in use" not in self.log().lower():
                    break
        self.stop()
        raise ServerError(last)

    def _spawn(self, cmd: Sequence[str]) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                list(cmd),
                cwd=self.dir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.add(self)

    def _wait_ready(self) -> None:
        assert self.proc is not None
        zone = self.ready_zone()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode} before answering;"
                    f" log:\n{self.log_tail()}"
                )
            if soa_answers(self.host, self.port, zone):
                return
            time.sleep(0.1)
        raise ServerError(
            f"{self.name} did not answer SOA {zone} on {self.host}:{self.port} within"
            f" {self.start_timeout}s; log:\n{self.log_tail()}"
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, remove: bool = True) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(STOP_TIMEOUT)
            # Kill anything left in the session we created (the process itself if it
            # ignored SIGTERM, and children it forked).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT)
        _LIVE.discard(self)
        if remove and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs ---------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # -- queries --------------------------------------------------------------
    def query(
        self,
        qname: str,
        rdtype: str = "A",
        tcp: bool = False,
        timeout: float = 3.0,
        **make_query: object,
    ) -> dns.message.Message:
        q = dns.message.make_query(qname, rdtype, **make_query)  # type: ignore[arg-type]
        q.flags &= ~dns.flags.RD
        if tcp:
            return dns.query.tcp(q, self.host, port=self.port, timeout=timeout)
        return dns.query.udp(q, self.host, port=self.port, timeout=timeout, ignore_trailing=True)


# --------------------------------------------------------------------------- BIND


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key; ``algorithm`` is a BIND name such as ``hmac-sha256``."""

    name: str
    secret: str  # base64
    algorithm: str = "hmac-sha256"

    def bind_conf(self) -> str:
        return f'key "{self.name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};\n'

    @property
    def cli(self) -> str:
        """``NAME:ALG:BASE64`` as the gitdns command line takes it."""
        alg = self.algorithm.removeprefix("hmac-").upper()
        return f"{self.name}:{alg}:{self.secret}"


@dataclass(frozen=True)
class Remote:
    """An address (and optional key) in a ``primaries``/``also-notify`` list."""

    host: str
    port: int
    key: str | None = None

    def bind_conf(self) -> str:
        key = f' key "{self.key}"' if self.key else ""
        return f"{self.host} port {self.port}{key};"


@dataclass
class NamedZone:
    """One zone in named.conf.

    ``type`` is ``primary`` (``text`` is the zone file) or ``secondary`` (``primaries``
    lists where to transfer from; ``text`` may seed the file).  ``options`` are raw
    statements added inside the zone block, e.g. ``'allow-transfer { key "k"; };'``.
    """

    name: str
    text: str | None = None
    type: str = "primary"
    primaries: Sequence[Remote] = ()
    also_notify: Sequence[Remote] = ()
    options: Sequence[str] = ()

    @property
    def file_name(self) -> str:
        return (self.name.strip(".") or "root") + ".zone"

    def bind_conf(self) -> str:
        lines = [f'zone "{self.name}" {{', f"  type {self.type};", f'  file "{self.file_name}";']
        if self.primaries:
            lines.append("  primaries { " + " ".join(r.bind_conf() for r in self.primaries) + " };")
        if self.also_notify:
            lines.append(
                "  also-notify { " + " ".join(r.bind_conf() for r in self.also_notify) + " };"
            )
            lines.append("  notify explicit;")
        lines.extend(f"  {o}" for o in self.options)
        lines.append("};")
        return "\n".join(lines) + "\n"


class Named(Server):
    """BIND ``named -g`` as root (``-g`` stays in the foreground and never drops to
    user ``bind`` unless ``-u`` is given), authoritative only, on ``host:port``.

    ``zones`` maps zone name -> zone file text (primary zones), or is a sequence of
    ``NamedZone`` for secondaries/extra per-zone options.  ``keys`` become ``key``
    statements; ``options`` are raw statements appended inside ``options { }``.
    ``host`` must be an address configured on an interface (named only listens on
    those): 127.0.0.1 here, not other 127.0.0.x.
    """

    name = "named"

    def __init__(
        self,
        zones: Mapping[str, str] | Iterable[NamedZone],
        keys: Iterable[TsigKey] = (),
        options: Iterable[str] = (),
        threads: int | None = None,
        ready_zone: str | None = None,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        if isinstance(zones, Mapping):
            self.zones = [NamedZone(n, t) for n, t in zones.items()]
        else:
            self.zones = list(zones)
        self.keys = list(keys)
        self.options = list(options)
        self.threads = threads
        self._ready_zone = ready_zone
        self.conf_path = self.dir / "named.conf"

    def ready_zone(self) -> str:
        if self._ready_zone:
            return self._ready_zone
        # A secondary has nothing to answer before its first transfer.
        primaries = [z for z in self.zones if z.type == "primary"]
        return (primaries or self.zones)[0].name

    def config(self) -> str:
        d = self.dir
        opts = "\n".join(f"  {o}" for o in self.options)
        return (
            "options {\n"
            f'  directory "{d}";\n'
            f"  listen-on port {self.port} {{ {self.host}; }};\n"
            "  listen-on-v6 { none; };\n"
            "  recursion no;\n"
            "  minimal-responses no-auth;\n"
            "  pid-file none;\n"
            f'  session-keyfile "{d}/session.key";\n'
            f'  managed-keys-directory "{d}";\n'
            "  dnssec-validation no;\n"
            "  notify no;\n"
            f"{opts}\n"
            "};\n"
            "controls { };\n"
            + "".join(k.bind_conf() for k in self.keys)
            + "".join(z.bind_conf() for z in self.zones)
        )

    def prepare(self) -> list[str]:
        for z in self.zones:
            if z.text is not None:
                (self.dir / z.file_name).write_text(z.text)
        self.conf_path.write_text(self.config())
        cmd = [which("named") or "/usr/sbin/named", "-g", "-4", "-c", str(self.conf_path)]
        if self.threads:
            cmd += ["-n", str(self.threads)]
        return cmd


# --------------------------------------------------------------------------- NSD


class Nsd(Server):
    """NLnet Labs ``nsd -d`` (foreground, as root, no chroot), primary zones only."""

    name = "nsd"

    def __init__(
        self,
        zones: Mapping[str, str],
        server_count: int = 1,
        options: Iterable[str] = (),
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.zones = dict(zones)
        self.server_count = server_count
        self.options = list(options)

    def ready_zone(self) -> str:
        return next(iter(self.zones))

    def prepare(self) -> list[str]:
        d = self.dir
        zones = ""
        for i, (name, text) in enumerate(self.zones.items()):
            (d / f"z{i}.zone").write_text(text)
            zones += f'zone:\n  name: "{name}"\n  zonefile: "{d}/z{i}.zone"\n'
        opts = "".join(f"  {o}\n" for o in self.options)
        conf = (
            "server:\n"
            f"  ip-address: {self.host}@{self.port}\n"
            f"  port: {self.port}\n"
            "  do-ip6: no\n"
            '  username: ""\n'
            '  chroot: ""\n'
            f'  zonesdir: "{d}"\n'
            '  database: ""\n'
            f'  zonelistfile: "{d}/zone.list"\n'
            f'  xfrdfile: "{d}/xfrd.state"\n'
            f'  xfrdir: "{d}"\n'
            f'  pidfile: "{d}/nsd.pid"\n'
            f"  server-count: {self.server_count}\n"
            "  verbosity: 1\n"
            f"{opts}"
            "remote-control:\n"
            "  control-enable: no\n" + zones
        )
        (d / "nsd.conf").write_text(conf)
        return [which("nsd") or "/usr/sbin/nsd", "-d", "-c", str(d / "nsd.conf")]


# --------------------------------------------------------------------------- Twisted Names


class TwistedNames(Server):
    """``twistd -n dns --bindzone FILE`` (Twisted Names' own authoritative server)."""

    name = "twistd-dns"

    def __init__(self, zone_name: str, text: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.zone_name = zone_name
        self.text = text

    def ready_zone(self) -> str:
        return self.zone_name

    def prepare(self) -> list[str]:
        path = self.dir / "zone"
        path.write_text(self.text)
        return [
            TWISTD,
            "-n",
            "--pidfile=",
            "dns",
            "--bindzone",
            str(path),
            "-i",
            self.host,
            "-p",
            str(self.port),
        ]


# --------------------------------------------------------------------------- gitdns


def git_env(repo: Path) -> dict[str, str]:
    """The environment tests run git in: a fixed identity, no system or user config."""
    return dict(
        os.environ,
        GIT_AUTHOR_NAME="gitdns tests",
        GIT_AUTHOR_EMAIL="tests@gitdns.invalid",
        GIT_COMMITTER_NAME="gitdns tests",
        GIT_COMMITTER_EMAIL="tests@gitdns.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(repo.parent),
    )


def git(repo: Path, *args: str, timeout: float = 30.0) -> str:
    env = git_env(repo)
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    ).stdout


def make_repo(path: Path, files: Mapping[str, str], message: str = "initial") -> Path:
    """A non-bare git repository at ``path`` with ``files`` committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return commit(path, files, message)


def commit(repo: Path, files: Mapping[str, str | None], message: str = "change") -> Path:
    """Write (or, for value ``None``, delete) ``files`` in ``repo`` and commit them."""
    for name, text in files.items():
        p = repo / name
        if text is None:
            p.unlink(missing_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return repo


class Gitdns(Server):
    """``twistd -n --pidfile= gitdns-primary --remote REPO --listen HOST:PORT --data-dir DIR``.

    ``zones`` maps file name (= zone name without the trailing dot) to zone text;
    they are committed to a fresh repository ``self.repo`` (``files`` adds other
    files such as ``_keys``).  ``args`` are extra plugin arguments.  ``remote``
    overrides the repository passed as ``--remote`` (e.g. a bare repo or URL).
    """

    name = "gitdns"

    def __init__(
        self,
        zones: Mapping[str, str],
        files: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        remote: str | None = None,
        plugin: str = "gitdns-primary",
        ready_zone: str | None = None,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.zones = dict(zones)
        self.args = list(args)
        self.plugin = plugin
        self.repo = self.dir / "repo"
        self.data_dir = self.dir / "data"
        self._ready_zone = ready_zone
        make_repo(self.repo, {**self.zones, **(files or {})})
        self.remote = remote or str(self.repo)

    def ready_zone(self) -> str:
        if self._ready_zone:
            return self._ready_zone
        return next(iter(self.zones)).rstrip(".") + "."

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def prepare(self) -> list[str]:
        self.data_dir.mkdir(exist_ok=True)
        return [
            TWISTD,
            "-n",
            "--pidfile=",
            self.plugin,
            "--remote",
            self.remote,
            "--listen",
            f"{self.host}:{self.port}",
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]

    def commit(self, files: Mapping[str, str | None], message: str = "change") -> None:
        commit(self.repo, files, message)


# --------------------------------------------------------------------------- clients


def _run(cmd: Sequence[str], timeout: float) -> str:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 and not r.stdout:
        raise RuntimeError(f"{cmd[0]} exited {r.returncode}: {r.stderr}")
    return r.stdout


def dig(*args: str, server: str = "127.0.0.1", port: int = 53, timeout: float = 15.0) -> str:
    """``dig @server -p port +norec +time=2 +tries=1 ARGS``; returns stdout."""
    return _run(
        [
            which("dig") or "dig",
            f"@{server}",
            "-p",
            str(port),
            "+norec",
            "+time=2",
            "+tries=1",
            *args,
        ],
        timeout,
    )


def kdig(*args: str, server: str = "127.0.0.1", port: int = 53, timeout: float = 15.0) -> str:
    """``kdig @server -p port +norec +time=2 +retry=0 ARGS``; returns stdout."""
    return _run(
        [
            which("kdig") or "kdig",
            f"@{server}",
            "-p",
            str(port),
            "+norec",
            "+time=2",
            "+retry=0",
            *args,
        ],
        timeout,
    )


def nsupdate(server: Server, key: TsigKey, zone: str, *commands: str) -> None:
    """BIND's nsupdate sends commands to server as one UPDATE of zone, signed with key."""
    script = f"server {server.host} {server.port}\nzone {zone}\n"
    script += "".join(f"{command}\n" for command in commands) + "send\n"
    result = subprocess.run(
        [which("nsupdate") or "nsupdate", "-y", f"{key.algorithm}:{key.name}:{key.secret}"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def server_log_report(servers: Iterable[Server]) -> str:
    return "\n".join(
        f"--- {s.name} {s.host}:{s.port} log tail ---\n{s.log_tail()}" for s in servers
    )


if __name__ == "__main__":  # manual smoke test: python tests/peers.py
    zone = "$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n"
    with Named({"example.": zone}) as n:
        print(dig("example.", "SOA", port=n.port), file=sys.stderr)


# --------------------------------------------------------------------------- sshd


def ssh_keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> str:
    """A new key pair at ``path`` and ``path.pub``; returns the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "gitdns-tests", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Path(f"{path}.pub").read_text().strip()


def ssh_fingerprint(public_key_line: str) -> str:
    """``SHA256:...`` of a public key line, computed by ``ssh-keygen -l -E sha256``."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", "-"],
        input=public_key_line + "\n",
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()[1]


class Sshd(Server):
    """OpenSSH ``sshd -D -e`` (foreground, logs to stderr) as root on ``host:port``.

    It has its own host key (``host_key_type``) and config: no PAM, public keys only,
    ``authorized_keys`` in its directory holding a generated client key
    (``client_key``, for the current user; ``authorize()`` adds more).  Git runs
    through the login shell, so ``git-upload-pack`` must be on the default PATH.
    """

    name = "sshd"

    def __init__(self, host_key_type: str = "ed25519", **kw: object) -> None:
        import pwd  # here, so this section only appends to the module

        super().__init__(**kw)  # type: ignore[arg-type]
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.host_key = self.dir / f"ssh_host_{host_key_type}_key"
        self.host_public_key = ssh_keygen(self.host_key, host_key_type)
        self.fingerprint = ssh_fingerprint(self.host_public_key)
        self.client_key = self.dir / "client_key"
        self.authorized_keys = self.dir / "authorized_keys"
        self.authorized_keys.write_text("")
        self.authorize(ssh_keygen(self.client_key))

    def authorize(self, public_key_line: str) -> None:
        with open(self.authorized_keys, "a") as f:
            f.write(public_key_line + "\n")

    def url(self, path: Path | str) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}{path}"

    def known_hosts_line(self) -> str:
        """This server's known_hosts entry, ``[host]:port keytype base64``."""
        key_type, key = self.host_public_key.split()[:2]
        return f"[{self.host}]:{self.port} {key_type} {key}"

    def prepare(self) -> list[str]:
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        conf = self.dir / "sshd_config"
        conf.write_text(
            f"ListenAddress {self.host}:{self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n"
        )
        return [which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)]

    def _wait_ready(self) -> None:
        # Ready when it sends its SSH banner (there is no zone to ask for).
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"sshd exited with {self.proc.returncode}; log:\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(self.address, timeout=1.0) as s,
            ):
                s.settimeout(1.0)
                if s.recv(64).startswith(b"SSH-"):
                    return
            time.sleep(0.1)
        raise ServerError(
            f"sshd sent no banner on {self.host}:{self.port} within"
            f" {self.start_timeout}s; log:\n{self.log_tail()}"
        )
