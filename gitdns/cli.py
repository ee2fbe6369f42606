"""The `gitdns` command, for people and git hooks. Thin: parses arguments, calls the library."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype

from gitdns import check as lint
from gitdns.keys import algorithm_from_text, format_new_key, parse_key_argument, secret_size

ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")


def keygen(arguments: argparse.Namespace) -> int:
    algorithm = algorithm_from_text(arguments.algorithm)
    secret = os.urandom(secret_size(algorithm))
    text = format_new_key(arguments.name, arguments.algorithm, secret=secret)
    print(f"; for a _keys file in the zone repository\n{text.dnskey_line}\n")
    print(f"; for --key (gitdns-secondary, gitdns-acme, gitdns notify/update)\n{text.argument}\n")
    print(f"; for named.conf, nsupdate -k, dig -k\n{text.bind_clause}")
    return 0


def notify(arguments: argparse.Namespace) -> int:
    """Tell a primary (or secondary) that zone changed, as onotify does."""
    # GITDNS_KEY: how hooks pass the key without showing it in `ps`.
    key_text = arguments.key or os.environ.get("GITDNS_KEY")
    key = parse_key_argument(key_text) if key_text else None
    zone = dns.name.from_text(arguments.zone)
    message = dns.message.make_query(zone, dns.rdatatype.SOA)
    message.set_opcode(dns.opcode.NOTIFY)
    message.flags |= dns.flags.AA
    message.flags &= ~dns.flags.RD
    if key is not None:
        tsig = key.tsig_key()
        message.use_tsig({tsig.name: tsig}, tsig.name, algorithm=tsig.algorithm)
    target = f"{arguments.server} port {arguments.port}"
    try:
        try:
            response = dns.query.tcp(
                message, arguments.server, timeout=arguments.timeout, port=arguments.port
            )
        except OSError:
            response = dns.query.udp(
                message, arguments.server, timeout=arguments.timeout, port=arguments.port
            )
    except (OSError, dns.exception.DNSException) as error:
        print(
            f"gitdns notify: {zone} to {target}: {error or type(error).__name__}", file=sys.stderr
        )
        return 1
    rcode = dns.rcode.to_text(response.rcode())
    print(f"NOTIFY {zone} to {target}: {rcode}")
    return 0 if response.rcode() == dns.rcode.NOERROR else 1


def check(arguments: argparse.Namespace) -> int:
    """Lint zone and key files: one file, a change (--old, --diff) or a git tree."""
    modes = [arguments.file is not None, arguments.diff is not None, arguments.repo is not None]
    if sum(modes) != 1:
        raise _Usage("give one of FILE, --diff OLD NEW or --repo DIR")
    if arguments.repo is None and (arguments.rev or arguments.old_rev or arguments.staged):
        raise _Usage("--rev, --old-rev and --staged go with --repo")
    if arguments.repo is not None and (arguments.zone or arguments.old):
        raise _Usage("--zone and --old go with FILE (in a repository the file name is the zone)")
    if arguments.staged and (arguments.rev or arguments.old_rev):
        raise _Usage("--staged compares the index with HEAD: no --rev or --old-rev")
    origin = dns.name.from_text(arguments.zone) if arguments.zone else None
    if arguments.repo is not None:
        repo = lint.open_repository(arguments.repo)
        rev = arguments.rev or "HEAD"
        if arguments.staged:
            report = lint.check_tree(lint.staged_files(repo), lint.head_files(repo))
        elif lint.is_null_revision(rev):
            report = lint.Report()  # a deleted branch: nothing to check
        elif arguments.old_rev:
            old = lint.tree_files(repo, arguments.old_rev)
            report = lint.check_tree(lint.tree_files(repo, rev), old)
        else:
            report = lint.check_tree(lint.tree_files(repo, rev))
    else:
        if arguments.diff is not None:
            old_path, path = arguments.diff
        else:
            old_path, path = arguments.old, arguments.file
        data = _read(path)
        old = _read(old_path) if old_path is not None else None
        result = lint.check_file(path, data, old, origin=origin, zone_from_file_name=origin is None)
        report = lint.Report([result])
    if arguments.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(report.text(diff=arguments.diff is not None))
    return report.exit_code


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise _Usage(f"{path}: {error.strerror}") from None


class _Usage(ValueError):
    """A command line that cannot be run (exit 2)."""


def hook_install(arguments: argparse.Namespace) -> int:
    repo = lint.open_repository(arguments.repo)
    if arguments.kind == "pre-commit":
        kinds = ["pre-commit"]
    elif arguments.kind == "pre-receive" or repo.is_bare:
        kinds = ["pre-receive", "post-receive"]
    else:
        kinds = ["pre-commit"]
    for path in lint.install_hooks(repo, kinds, _gitdns_executable(), arguments.force):
        print(f"installed {path}")
    if "post-receive" in kinds and "gitdns.server" not in repo.config:
        print(
            "to NOTIFY a primary after each push: git config gitdns.server ADDRESS"
            " (and gitdns.port, gitdns.key NAME:ALG:SECRET)"
        )
    return 0


def _gitdns_executable() -> str:
    """The absolute path of this gitdns, so hooks work whatever git's PATH is."""
    invoked = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.isfile(invoked) and os.access(invoked, os.X_OK) and not invoked.endswith(".py"):
        return invoked
    found = shutil.which("gitdns")
    if found is None:
        raise ValueError("cannot find the gitdns executable to call from the hooks")
    return os.path.abspath(found)


def hook_changed_zones(arguments: argparse.Namespace) -> int:
    repo = lint.open_repository(arguments.repo)
    old = lint.tree_files(repo, arguments.old)
    new = lint.tree_files(repo, arguments.new)
    for zone in lint.zones_to_notify(old, new):
        print(zone)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gitdns", description="Tools for zones kept in git and served by gitdns."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser(
        "keygen",
        help="generate a TSIG key",
        description="Print a fresh TSIG secret as a _keys DNSKEY line, as the "
        "NAME:ALG:SECRET argument form and as a BIND key clause.",
    )
    generate.add_argument("name", help="key name, e.g. laptop._update.example.com")
    generate.add_argument("--algorithm", "-a", default="hmac-sha256", choices=ALGORITHMS)
    generate.set_defaults(run=keygen)

    tell = commands.add_parser(
        "notify",
        help="send a (TSIG-signed) NOTIFY",
        description="Send a NOTIFY for ZONE to SERVER; signed with --key, it makes a "
        "gitdns primary fetch its repository and reload.",
    )
    tell.add_argument("server", help="IP address of the server")
    tell.add_argument("zone", help="the zone that changed")
    tell.add_argument(
        "--key", "-k", help="NAME:ALG:SECRET, e.g. personal._update.mirage:SHA256:..."
    )
    tell.add_argument("--port", "-p", type=int, default=53)
    tell.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    tell.set_defaults(run=notify)

    lint_command = commands.add_parser(
        "check",
        help="check zone and key files",
        description="Check a zone file (or _keys file) as the server reads it, plus what it"
        " cannot see: names missing their final dot, name servers without addresses, a"
        " serial that did not increase (--old). Findings are FILE:LINE:COLUMN: MESSAGE;"
        " exit status 0 clean (warnings allowed), 1 errors, 2 usage.",
    )
    lint_command.add_argument("file", nargs="?", metavar="FILE", help="zone or _keys file")
    lint_command.add_argument(
        "--zone", "-z", help="the zone FILE holds (default: its file name, as in a repository)"
    )
    lint_command.add_argument(
        "--old",
        metavar="OLDFILE",
        help="the previous version: the serial must increase if records changed; an empty"
        " OLDFILE is a new zone, an empty FILE a removed one",
    )
    lint_command.add_argument(
        "--diff",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="check NEW against OLD and print the records removed (-) and added (+)",
    )
    lint_command.add_argument(
        "--repo", metavar="DIR", help="check the root files of a git repository"
    )
    lint_command.add_argument("--rev", help="with --repo: the revision to check (default HEAD)")
    lint_command.add_argument(
        "--old-rev",
        metavar="REV",
        help="with --repo: check only files changed since REV, each against its version"
        " there (all zeros: none, every file is new)",
    )
    lint_command.add_argument(
        "--staged",
        action="store_true",
        help="with --repo: check the files staged in the index against HEAD (pre-commit)",
    )
    lint_command.add_argument("--format", choices=("text", "json"), default="text")
    lint_command.set_defaults(run=check)

    hook = commands.add_parser(
        "hook",
        help="git hooks that run gitdns check and notify",
        description="Git hooks: check zone and key files before they are committed or"
        " pushed, and NOTIFY the primary after a push.",
    )
    hook_commands = hook.add_subparsers(dest="hook_command", required=True, metavar="COMMAND")
    install = hook_commands.add_parser(
        "install",
        help="install the hooks in a repository",
        description="Install hooks calling this gitdns by its absolute path. --pre-commit"
        " (default for a repository with a work tree): check what is committed."
        " --pre-receive (default for a bare repository): refuse pushes that fail the"
        " check, and after a push NOTIFY the primary of the changed zones (git config"
        " gitdns.server, gitdns.port, gitdns.key, gitdns.branch).",
    )
    kind = install.add_mutually_exclusive_group()
    kind.add_argument("--pre-commit", dest="kind", action="store_const", const="pre-commit")
    kind.add_argument("--pre-receive", dest="kind", action="store_const", const="pre-receive")
    install.add_argument("--force", action="store_true", help="replace hooks gitdns did not write")
    install.add_argument("repo", metavar="REPO", help="the repository (bare or not)")
    install.set_defaults(run=hook_install)
    changed = hook_commands.add_parser(
        "changed-zones",
        help="list the zones to NOTIFY after a change (for the post-receive hook)",
    )
    changed.add_argument("--repo", default=".", metavar="DIR")
    changed.add_argument("old", metavar="OLD", help="revision before (all zeros: none)")
    changed.add_argument("new", metavar="NEW", help="revision after (all zeros: none)")
    changed.set_defaults(run=hook_changed_zones)
    _add_certificate_commands(commands)
    return top


# ---------------------------------------------------------------------------- certify, update
# Certificates through DNS (`certify`, the seed's ocertify) and a signed UPDATE from the
# command line (`update`, the seed's oupdate). Imports are local: the acme library is
# slow to import and only these commands need it.


def certify_command(arguments: argparse.Namespace) -> int:
    """Get a certificate through DNS: CSR by UPDATE, then poll the TLSA RRset."""
    import time

    from twisted.internet import reactor
    from twisted.python.failure import Failure

    from gitdns import acme, certify

    key = _certificate_key(arguments)
    server, port = _server(arguments)
    names = [*arguments.hostnames, *arguments.additional]
    stem = certify.name_text(names[0]).replace("*", "wildcard")
    key_file = arguments.key_file or f"{stem}.key"
    cert_file = arguments.cert_file or f"{stem}.pem"
    private = _load_or_make_private_key(key_file, arguments.key_type)
    csr = certify.make_csr(private, names)
    if arguments.csr_file:
        _write_file(arguments.csr_file, csr.public_bytes(_pem()), 0o644)
    started = time.monotonic()
    outcome: list[object] = []

    def run() -> None:
        d = acme.obtain_certificate(reactor, server, port, key, csr, arguments.timeout, print)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
    result = outcome[0] if outcome else None
    if not isinstance(result, certify.Found):
        reason = result.getErrorMessage() if isinstance(result, Failure) else "interrupted"
        print(f"gitdns certify: {names[0]}: {reason}", file=sys.stderr)
        return 1
    _write_file(cert_file, result.pem(), 0o644)
    print(
        f"certificate for {', '.join(sorted(certify.names_of(result.certificate)))}: serial"
        f" {result.certificate.serial_number:x}, valid until"
        f" {result.certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC,"
        f" {len(result.chain)} CA certificates; {cert_file} (key {key_file}) after"
        f" {time.monotonic() - started:.1f} s"
    )
    return 0


def _certificate_key(arguments: argparse.Namespace):  # -> gitdns.keys.Key
    # GITDNS_KEY: the key without showing it in `ps`.
    text = arguments.key or os.environ.get("GITDNS_KEY")
    if not text:
        raise ValueError("--key NAME:ALG:SECRET (or GITDNS_KEY) is required")
    return parse_key_argument(text)


def _server(arguments: argparse.Namespace) -> tuple[str, int]:
    from gitdns.acme import parse_host_port

    host, port = parse_host_port(arguments.server, arguments.port or 53)
    if arguments.port and port != arguments.port:
        raise ValueError(f"{arguments.server} and --port {arguments.port} disagree")
    return host, port


def _pem():  # -> serialization.Encoding
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM


def _load_or_make_private_key(path: str, key_type: str):  # -> certify.PrivateKey
    """The key in path, or a new one written there (mode 0600) before anything is sent,
    so the certificate that comes later fits the key we keep."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from gitdns.acme import write_private

    if os.path.exists(path):
        with open(path, "rb") as file:
            private = serialization.load_pem_private_key(file.read(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an ECDSA or RSA private key")
        return private
    if key_type == "ecdsa-p256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = rsa.generate_private_key(65537, int(key_type.removeprefix("rsa-")))
    data = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, data)
    return private


def _write_file(path: str, data: bytes, mode: int) -> None:
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def update_command(arguments: argparse.Namespace) -> int:
    """One TSIG-signed UPDATE (RFC 2136) from the command line, as oupdate sends."""
    import dns.rdata
    import dns.update

    from gitdns import certify

    key = _certificate_key(arguments)
    server, port = _server(arguments)
    operations = _update_operations(arguments.operations)
    # Every record is read before anything is sent: a typo is a usage error (exit 2).
    changes: list[tuple[str, str, tuple[object, ...]]] = []
    for operation, name, *rest in operations:
        if operation == "add":
            ttl, rdtype, data = rest
            rdata = dns.rdata.from_text("IN", rdtype, data, origin=dns.name.root)
            changes.append(("add", name, (int(ttl), rdata)))
        elif len(rest) == 2:
            changes.append(("delete", name, (dns.rdata.from_text("IN", *rest, dns.name.root),)))
        else:
            changes.append(("delete", name, tuple(rest)))
    try:
        if arguments.zone:
            zone = dns.name.from_text(arguments.zone)
        else:
            query = dns.message.make_query(operations[0][1], dns.rdatatype.SOA)
            query.flags &= ~dns.flags.RD
            response = dns.query.tcp(query, server, port=port, timeout=arguments.timeout)
            found = certify.zone_of_response(response)
            if found is None:
                raise ValueError(f"{server} port {port} names no zone for {operations[0][1]}")
            zone = found
        message = dns.update.UpdateMessage(zone)
        tsig = key.tsig_key()
        message.use_tsig({tsig.name: tsig}, tsig.name, algorithm=tsig.algorithm)
        for operation, name, values in changes:
            getattr(message, operation)(name, *values)
        response = dns.query.tcp(message, server, port=port, timeout=arguments.timeout)
    except (OSError, dns.exception.DNSException) as error:
        print(f"gitdns update: {server} port {port}: {error}", file=sys.stderr)
        return 1
    print(f"UPDATE {zone} at {server} port {port}: {dns.rcode.to_text(response.rcode())}")
    return 0 if response.rcode() == dns.rcode.NOERROR else 1


def _update_operations(tokens: Sequence[str]) -> list[tuple[str, ...]]:
    """`add NAME TTL TYPE DATA...` and `delete NAME [TYPE [DATA...]]`, one after the
    other; DATA runs to the next `add`/`delete`. Names are absolute, as for nsupdate."""
    keywords = ("add", "delete")
    groups: list[list[str]] = []
    for token in tokens:
        if token.lower() in keywords:
            groups.append([token.lower()])
        elif not groups:
            raise ValueError(f"expected add or delete, not {token!r}")
        else:
            groups[-1].append(token)
    operations: list[tuple[str, ...]] = []
    for operation, *words in groups:
        if operation == "add":
            if len(words) < 4 or not words[1].isdigit():
                raise ValueError("add NAME TTL TYPE DATA")
            name, ttl, rdtype, *data = words
            operations.append((operation, name, ttl, rdtype, " ".join(data)))
        else:
            if not words:
                raise ValueError("delete NAME [TYPE [DATA]]")
            name, *rest = words
            if len(rest) > 1:
                rest = [rest[0], " ".join(rest[1:])]
            operations.append((operation, name, *rest))
    if not operations:
        raise ValueError("nothing to update: give add or delete operations")
    return [(op, str(dns.name.from_text(name)), *rest) for op, name, *rest in operations]


def _add_certificate_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    get = commands.add_parser(
        "certify",
        help="get a certificate through DNS (CSR by UPDATE, certificate from gitdns-acme)",
        description="Publish a certificate signing request for HOSTNAME as TLSA 3 255 0 at"
        " _letsencrypt._tcp.HOSTNAME (one UPDATE that replaces the TLSA records), unless a"
        " matching valid certificate is published already, then poll until gitdns-acme"
        " publishes the certificate. Writes the private key (0600, reused if present) and"
        " the full chain as PEM. Exit status 0 with a certificate, 1 without, 2 usage.",
    )
    get.add_argument("server", metavar="SERVER[:PORT]", help="IP address of the primary")
    get.add_argument(
        "hostnames", metavar="HOSTNAME", nargs="+", help="names, the first is the host"
    )
    get.add_argument(
        "--additional",
        "-a",
        action="append",
        default=[],
        metavar="NAME",
        help="another name for the certificate (repeat)",
    )
    get.add_argument("--key", "-k", help="NAME:ALG:SECRET with update access (or GITDNS_KEY)")
    get.add_argument("--port", "-p", type=int, help="port of SERVER (default 53)")
    get.add_argument("--key-file", metavar="FILE", help="private key, PEM (default HOST.key)")
    get.add_argument(
        "--key-type",
        choices=("ecdsa-p256", "rsa-2048", "rsa-4096"),
        default="ecdsa-p256",
        help="for a new key (default ecdsa-p256)",
    )
    get.add_argument("--csr-file", "--csr-out", metavar="FILE", help="write the CSR (PEM) here")
    get.add_argument(
        "--cert-file",
        "--cert-out",
        metavar="FILE",
        help="write the certificate and its chain (PEM) here (default HOST.pem)",
    )
    get.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    get.set_defaults(run=certify_command)

    change = commands.add_parser(
        "update",
        help="send a TSIG-signed UPDATE",
        description="Send one UPDATE to SERVER: OPERATION is `add NAME TTL TYPE DATA` or"
        " `delete NAME [TYPE [DATA]]`, repeated; names are absolute. Exit status 0 on"
        " NOERROR, 1 otherwise, 2 usage.",
    )
    change.add_argument("server", metavar="SERVER[:PORT]", help="IP address of the primary")
    change.add_argument("operations", metavar="OPERATION", nargs="+")
    change.add_argument("--key", "-k", help="NAME:ALG:SECRET with update access (or GITDNS_KEY)")
    change.add_argument("--port", "-p", type=int, help="port of SERVER (default 53)")
    change.add_argument("--zone", "-z", help="the zone (default: asked from SERVER)")
    change.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    change.set_defaults(run=update_command)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except (ValueError, dns.exception.DNSException) as error:
        print(f"gitdns {arguments.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
