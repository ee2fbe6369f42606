"""Certificates through DNS end to end (issue 7): `gitdns certify` -> gitdns primary ->
gitdns-acme -> pebble (a real ACME CA, validating dns-01 against our primary) -> back.

Everything runs on loopback, on one port P at three addresses, because a gitdns primary
sends its NOTIFYs to the secondaries' addresses at one --notify-port:

    127.0.0.2:P  gitdns-primary (SOA MNAME ns1; pebble's -dnsserver)
    127.0.0.1:P  gitdns-secondary (NS ns2: pebble does not ask it, gitdns-acme does)
    127.0.0.3:P  gitdns-acme (hidden: registered by its signed SOA query from there)
    127.0.0.1:Q  pebble, its TLS certificate made by this test
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import dns.update
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import Servers
from tests.peers import (
    ROOT,
    TWISTD,
    Gitdns,
    Server,
    ServerError,
    TsigKey,
    free_port,
    git,
    which,
)
from tests.test_secondary import GitdnsSecondary
from tests.test_update import make_remote

GITDNS = str(ROOT / ".venv" / "bin" / "gitdns")
PRIMARY, SECONDARY, ACME = "127.0.0.2", "127.0.0.1", "127.0.0.3"

ZONE = """\
$ORIGIN mirage.
$TTL 3600
@\tSOA\tns1\thostmaster\t1\t86400\t7200\t1048576\t300
@\tNS\tns1
@\tNS\tns2
ns1\tA\t127.0.0.2
ns2\tA\t127.0.0.1
www\tA\t127.0.0.2
"""
PERSONAL = TsigKey("personal._update.mirage", "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")
ACME_KEY = TsigKey("acme._update.mirage", "x1TDO5dNVpC1d0ep3Ywc0Jb1Ov/0GqvrPB0/t5GfvCk=")
SECONDARY_KEY = TsigKey(
    "127.0.0.2.127.0.0.1._transfer.mirage", "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="
)
KEYS = "".join(
    f"{k.name}. DNSKEY 0 3 163 {k.secret}\n" for k in (PERSONAL, ACME_KEY, SECONDARY_KEY)
)

WAIT = 30.0


def eventually(check: Callable[[], object], timeout: float = WAIT, step: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)


def common_port(hosts: Sequence[str], attempts: int = 50) -> int:
    """A port free for UDP and TCP on every one of hosts."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            with contextlib.ExitStack() as stack:
                for host in hosts:
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        s = stack.enter_context(socket.socket(socket.AF_INET, kind))
                        s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no common free port")


# --------------------------------------------------------------------------- pebble


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1/localhost signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("gitdns test CA"))
        .issuer_name(_name("gitdns test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class Pebble(Server):
    """Let's Encrypt's test CA, `pebble -config FILE -dnsserver HOST:PORT`, at full speed
    (PEBBLE_VA_NOSLEEP), validating for real (PEBBLE_VA_ALWAYS_VALID=0)."""

    name = "pebble"

    def __init__(self, dns_server: tuple[str, int], validity: int | None = None, **kw: object):
        super().__init__(**kw)  # type: ignore[arg-type]
        self.dns_server = dns_server
        self.validity = validity
        self.management_port = common_port([self.host])
        self.ca_file, self.cert_file, self.key_file = make_tls(self.dir)

    @property
    def directory(self) -> str:
        return f"https://{self.host}:{self.port}/dir"

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            PEBBLE_VA_NOSLEEP="1",
            PEBBLE_VA_ALWAYS_VALID="0",
            # Deterministic runs: no random bad nonces, every order validates anew.
            PEBBLE_WFE_NONCEREJECT="0",
            PEBBLE_AUTHZREUSE="0",
        )

    def prepare(self) -> list[str]:
        config: dict[str, object] = {
            "listenAddress": f"{self.host}:{self.port}",
            "managementListenAddress": f"{self.host}:{self.management_port}",
            "certificate": str(self.cert_file),
            "privateKey": str(self.key_file),
            "httpPort": common_port([self.host]),
            "tlsPort": common_port([self.host]),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
        if self.validity is not None:
            config["certificateValidityPeriod"] = self.validity
        (self.dir / "pebble.json").write_text(json.dumps({"pebble": config}))
        host, port = self.dns_server
        return [
            which("pebble") or "/usr/bin/pebble",
            "-config",
            str(self.dir / "pebble.json"),
            "-dnsserver",
            f"{host}:{port}",
        ]

    def get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.read()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"pebble exited; log:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                self.get(self.directory)
                return
            time.sleep(0.1)
        raise ServerError(f"pebble did not serve {self.directory}; log:\n{self.log_tail()}")

    def root(self) -> x509.Certificate:
        """The root of this run (pebble makes new ones at every start)."""
        url = f"https://{self.host}:{self.management_port}/roots/0"
        return x509.load_pem_x509_certificate(self.get(url))


# --------------------------------------------------------------------------- gitdns-acme


class GitdnsAcme(Server):
    """`twistd -n gitdns-acme --key ... --primary HOST:PORT --listen HOST:PORT ...`; ready
    when its hidden secondary has transferred the zone."""

    name = "gitdns-acme"

    def __init__(
        self,
        primary: tuple[str, int],
        pebble: Pebble,
        args: Sequence[str] = (),
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.primary = primary
        self.pebble = pebble
        self.args = list(args)
        self.data_dir = self.dir / "data"

    def env(self) -> dict[str, str]:
        return Gitdns.env(self)  # type: ignore[arg-type]

    def prepare(self) -> list[str]:
        return [
            TWISTD,
            "-n",
            "--pidfile=",
            "gitdns-acme",
            "--key",
            ACME_KEY.cli,
            "--primary",
            f"{self.primary[0]}:{self.primary[1]}",
            "--listen",
            f"{self.host}:{self.port}",
            "--directory",
            self.pebble.directory,
            "--ca-file",
            str(self.pebble.ca_file),
            "--data-dir",
            str(self.data_dir),
            "--ns-port",
            str(self.primary[1]),
            "--retry-delay",
            "1",
            *self.args,
        ]

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"gitdns-acme exited; log:\n{self.log_tail()}")
            if re.search(r"XFR of mirage\. from", self.log()):
                return
            time.sleep(0.1)
        raise ServerError(f"gitdns-acme did not transfer mirage.; log:\n{self.log_tail()}")


class Setup:
    """Pebble, a primary (bare remote), a secondary and gitdns-acme, all started."""

    def __init__(
        self,
        servers: Servers,
        tmp: Path,
        validity: int | None = None,
        acme_args: Sequence[str] = (),
    ) -> None:
        self.tmp = tmp
        self.port = port = common_port([PRIMARY, SECONDARY, ACME])
        self.remote, _ = make_remote(tmp, {"mirage": ZONE, "mirage._keys": KEYS})
        self.pebble = servers(Pebble((PRIMARY, port), validity, port=common_port(["127.0.0.1"])))
        self.primary = servers(
            Gitdns(
                {"mirage": ZONE},
                remote=str(self.remote),
                args=["--notify-port", str(port)],
                host=PRIMARY,
                port=port,
            )
        )
        self.secondary = servers(
            GitdnsSecondary([SECONDARY_KEY], "mirage.", port, host=SECONDARY, port=port)
        )
        self.metrics_port = free_port()
        acme_args = [*acme_args, "--metrics", f"127.0.0.1:{self.metrics_port}"]
        self.acme = servers(
            GitdnsAcme((PRIMARY, port), self.pebble, acme_args, host=ACME, port=port)
        )

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as scraped:
            return scraped.read().decode()

    def certify(
        self, *names: str, stem: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [
            GITDNS,
            "certify",
            PRIMARY,
            "--port",
            str(self.port),
            *names,
            "--key",
            PERSONAL.cli,
            "--key-file",
            str(self.tmp / f"{stem}.key"),
            "--cert-file",
            str(self.tmp / f"{stem}.pem"),
            "--csr-file",
            str(self.tmp / f"{stem}.csr"),
            "--timeout",
            str(timeout),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30)
        if check:
            assert result.returncode == 0, (result.stdout, result.stderr, self.acme.log_tail(60))
        return result

    def records(self, server: Server, name: str, rdtype: str) -> list[str]:
        query = dns.message.make_query(name, rdtype)
        response = dns.query.tcp(query, server.host, port=server.port, timeout=5)
        return [rdata.to_text() for rrset in response.answer for rdata in rrset]

    def tlsa(self, server: Server, host: str) -> list[str]:
        return self.records(server, f"_letsencrypt._tcp.{host}", "TLSA")


@pytest.fixture
def setup(servers: Servers, tmp_path: Path) -> Iterator[Callable[..., Setup]]:
    if which("pebble") is None:
        pytest.fail("pebble is not installed: run scripts/setup.sh")
    yield lambda **kw: Setup(servers, tmp_path, **kw)


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def verify(chain: list[x509.Certificate], root: x509.Certificate, name: str) -> None:
    """The leaf verifies for name through the intermediates to root (cryptography's
    RFC 5280 / CA/B path validation)."""
    store = verification.Store([root])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    verifier.verify(chain[0], chain[1:])


def history(remote: Path) -> list[tuple[str, list[str]]]:
    """(author, changed record lines) of every commit of the remote, oldest first."""
    out = git(remote, "log", "--reverse", "--format=%x00%an%n%B", "main")
    commits = []
    for entry in out.split("\x00")[1:]:
        author, *body = entry.splitlines()
        changes = [line.strip() for line in body if line.startswith("  ")]
        commits.append((author, changes))
    return commits


def changed(changes: list[str], sign: str, owner: str, rdtype: str, prefix: str = "") -> bool:
    return any(
        line.startswith(f"{sign} {owner} ") and f" IN {rdtype} {prefix}" in line for line in changes
    )


# --------------------------------------------------------------------------- tests


def test_certify_a_name_and_a_wildcard(setup) -> None:
    s = setup()
    started = time.monotonic()
    result = s.certify("www.mirage", stem="www")
    elapsed = time.monotonic() - started
    print(f"gitdns certify www.mirage: certificate after {elapsed:.2f} s")
    assert elapsed < 10.0, (elapsed, s.acme.log_tail(60))
    assert "certificate for www.mirage" in result.stdout

    key_file = s.tmp / "www.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    chain = load_chain(s.tmp / "www.pem")
    root = s.pebble.root()
    verify(chain, root, "www.mirage")
    private = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert chain[0].public_key() == private.public_key()

    # Published on the primary and the secondary: CSR, certificate, chain; no challenge.
    served = s.tlsa(s.primary, "www.mirage")
    assert sum(r.startswith("3 255 0 ") for r in served) == 1
    assert sum(r.startswith("3 0 0 ") for r in served) == 1
    assert sum(r.startswith("0 0 0 ") for r in served) == len(chain) - 1
    eventually(lambda: sorted(s.tlsa(s.secondary, "www.mirage")) == sorted(served))
    assert s.records(s.primary, "_acme-challenge.www.mirage", "TXT") == []
    assert s.records(s.secondary, "_acme-challenge.www.mirage", "TXT") == []

    # A wildcard and its base in one certificate: both challenges at _acme-challenge.mirage.
    s.certify("*.mirage", "mirage", stem="wildcard")
    wildcard = load_chain(s.tmp / "wildcard.pem")
    verify(wildcard, root, "anything.mirage")
    verify(wildcard, root, "mirage")
    assert s.records(s.primary, "_acme-challenge.mirage", "TXT") == []
    assert len(s.tlsa(s.primary, "*.mirage")) == 1 + len(wildcard)
    assert "gitdns_certificates_issued_total 2.0" in s.metrics()

    # The whole history is in git: CSR (by the client), challenge, certificate, cleanup
    # (by gitdns-acme), for each certificate.
    eventually(lambda: len(history(s.remote)) >= 9)
    commits = history(s.remote)
    assert len(commits) == 9, commits

    # certify again: the published certificate is taken, nothing is uploaded.
    again = s.certify("www.mirage", stem="www")
    assert "published already" in again.stdout
    assert load_chain(s.tmp / "www.pem")[0] == chain[0]
    time.sleep(1)
    assert len(history(s.remote)) == 9
    www = "_letsencrypt._tcp.www.mirage."
    steps = [
        (PERSONAL.name, "+", www, "TLSA", "3 255 0 "),
        (ACME_KEY.name, "+", "_acme-challenge.www.mirage.", "TXT", ""),
        (ACME_KEY.name, "+", www, "TLSA", "3 0 0 "),
        (ACME_KEY.name, "-", "_acme-challenge.www.mirage.", "TXT", ""),
    ]
    for (author, changes), (key, sign, owner, rdtype, prefix) in zip(
        commits[1:5], steps, strict=True
    ):
        assert author.startswith(key), (author, changes)
        assert changed(changes, sign, owner, rdtype, prefix), changes
    assert changed(commits[3][1], "+", www, "TLSA", "0 0 0 ")
    wild = commits[5:9]
    assert changed(wild[0][1], "+", "_letsencrypt._tcp.*.mirage.", "TLSA", "3 255 0 ")
    assert sum(changed([c], "+", "_acme-challenge.mirage.", "TXT") for c in wild[1][1]) == 2
    assert changed(wild[2][1], "+", "_letsencrypt._tcp.*.mirage.", "TLSA", "3 0 0 ")
    assert sum(changed([c], "-", "_acme-challenge.mirage.", "TXT") for c in wild[3][1]) == 2

    log = s.acme.log()
    for secret in (ACME_KEY.secret, PERSONAL.secret):
        assert secret not in "\n".join(x for x in log.splitlines() if not x.startswith("$ "))
    assert "challenge served by 2 servers" in log, log


def test_renewal_replaces_the_certificate(setup) -> None:
    # Certificates valid 20 s, renewed 30 days before expiry: at half their life.
    s = setup(validity=20, acme_args=["--renew-days", "30"])
    s.certify("www.mirage", stem="www")
    first = load_chain(s.tmp / "www.pem")[0]
    first_der = first.public_bytes(serialization.Encoding.DER).hex()

    def renewed() -> list[str] | None:
        records = s.tlsa(s.primary, "www.mirage")
        certificates = [r for r in records if r.startswith("3 0 0 ")]
        if len(certificates) == 1 and first_der not in certificates[0].replace(" ", ""):
            return records
        return None

    records = eventually(renewed, timeout=40)
    assert sum(r.startswith("3 255 0 ") for r in records) == 1  # the CSR stays
    assert "due for renewal" in s.acme.log()
    # The client sees the new certificate for its key.
    s.certify("www.mirage", stem="www")
    second = load_chain(s.tmp / "www.pem")
    assert second[0] != first
    assert second[0].public_key() == first.public_key()
    verify(second, s.pebble.root(), "www.mirage")


def test_backoff_while_the_ca_is_down_and_recovery(setup) -> None:
    s = setup()
    # A CSR that does not parse is logged and skipped; the other names are served.
    bad = subprocess.run(
        [
            GITDNS,
            "update",
            f"{PRIMARY}:{s.port}",
            "--key",
            PERSONAL.cli,
            "add",
            "_letsencrypt._tcp.bad.mirage",
            "3600",
            "TLSA",
            "3 255 0 3003020100",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 0, bad
    assert "NOERROR" in bad.stdout
    eventually(
        lambda: "_letsencrypt._tcp.bad.mirage.: skipped: the CSR does not parse" in s.acme.log()
    )

    s.pebble.stop(remove=False)
    client = subprocess.Popen(
        [
            GITDNS,
            "certify",
            f"{PRIMARY}:{s.port}",
            "www.mirage",
            "--key",
            PERSONAL.cli,
            "--key-file",
            str(s.tmp / "www.key"),
            "--cert-file",
            str(s.tmp / "www.pem"),
            "--timeout",
            "90",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        failed = re.compile(r"www\.mirage\.: failed .*; again in ([\d.]+) s")

        def delays() -> list[float]:
            return [float(d) for d in failed.findall(s.acme.log())]

        eventually(lambda: len(delays()) >= 3, timeout=30)
        found = delays()
        assert found[:3] == [1.0, 2.0, 4.0], found
        s.pebble.start()  # same ports, a new CA
        output, _ = client.communicate(timeout=90)
        assert client.returncode == 0, (output, s.acme.log_tail(60))
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
    verify(load_chain(s.tmp / "www.pem"), s.pebble.root(), "www.mirage")
    assert s.records(s.primary, "_acme-challenge.www.mirage", "TXT") == []
    assert s.acme.log().count("bad.mirage.: skipped") == 1  # told once, not at every change
    assert s.acme.log().count("bad.mirage.: skipped") == 1  # told once, not at every change
