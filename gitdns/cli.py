"""The `gitdns` command, for people and git hooks. Thin: parses arguments, calls the library."""

from __future__ import annotations

import argparse
import os
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
    key = parse_key_argument(arguments.key) if arguments.key else None
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
    return top


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except (ValueError, dns.exception.DNSException) as error:
        print(f"gitdns {arguments.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
