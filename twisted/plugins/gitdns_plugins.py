"""twistd plugins: gitdns-primary, gitdns-secondary and gitdns-acme. Thin on purpose."""

from __future__ import annotations

import importlib

from twisted.application.service import IServiceMaker, Service
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class _ServiceOptions(usage.Options):
    """What the three services share: listen addresses, metrics, TSIG keys."""

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["key"] = []
        self["metrics"] = None

    def _address(self, value: str) -> tuple[str, int]:
        from gitdns.server import parse_listen

        try:
            return parse_listen(value)
        except ValueError as error:
            raise usage.UsageError(str(error)) from None

    def _add_key(self, value: str) -> None:
        from gitdns.keys import parse_key_argument

        try:
            self["key"].append(parse_key_argument(value))
        except ValueError as error:
            raise usage.UsageError(str(error)) from None

    def opt_listen(self, value: str) -> None:
        """Address to serve DNS on, HOST:PORT or [V6]:PORT; repeat for several
        (default 0.0.0.0:53 and [::]:53)."""
        self["listen"].append(self._address(value))

    def opt_metrics(self, value: str) -> None:
        """Serve Prometheus metrics on http://HOST:PORT/metrics (HOST:PORT)."""
        self["metrics"] = self._address(value)


class PrimaryOptions(_ServiceOptions):
    synopsis = (
        "--remote URL [--branch NAME] [--listen HOST:PORT ...] [--data-dir DIR] "
        "[--ssh-key FILE] [--host-key SHA256:... ... | --known-hosts FILE]"
    )
    optFlags = [
        [
            "axfr",
            None,
            "Allow zone transfers without a key (by default a TSIG key with "
            "transfer access is needed).",
        ],
    ]
    optParameters = [
        [
            "remote",
            "r",
            None,
            "Git remote: path, file://, ssh://, git@host:path or https:// URL; "
            "URL#branch selects a branch.",
        ],
        ["branch", "b", None, "Branch to serve (default: the remote's default branch)."],
        ["data-dir", "d", "gitdns-data", "Directory for the clone and state."],
        ["notify-port", None, 53, "Port of the secondaries our NOTIFYs go to.", int],
        [
            "rrl-rate",
            None,
            None,
            "Response rate limiting: responses per second per client "
            "network and answer (off by default).",
            float,
        ],
        [
            "rrl-slip",
            None,
            2,
            "With --rrl-rate, every Nth limited response is sent truncated (0: never).",
            int,
        ],
        ["ssh-key", None, None, "OpenSSH private key file for an ssh remote."],
        [
            "ssh-key-passphrase-file",
            None,
            None,
            "File holding the passphrase of an encrypted --ssh-key.",
        ],
        [
            "known-hosts",
            None,
            None,
            "OpenSSH known_hosts file listing the ssh remote's host key "
            "(default without --host-key: ~/.ssh/known_hosts).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["host-key"] = []

    def opt_host_key(self, value: str) -> None:
        """Pinned SHA256 fingerprint of the ssh remote's host key, as
        `ssh-keygen -l -E sha256` prints it; repeat for several."""
        self["host-key"].append(value)

    def postOptions(self) -> None:
        from gitdns.gitrepo import Remote, SshCredentials

        if not self["remote"]:
            raise usage.UsageError("--remote is required")
        try:
            ssh = None
            ssh_options = ("ssh-key", "ssh-key-passphrase-file", "host-key", "known-hosts")
            if any(self[name] for name in ssh_options):
                ssh = SshCredentials.from_options(
                    self["ssh-key"],
                    self["ssh-key-passphrase-file"],
                    tuple(self["host-key"]),
                    self["known-hosts"],
                )
            self["remote"] = Remote.parse(self["remote"], self["branch"], ssh)
        except ValueError as error:
            raise usage.UsageError(str(error)) from None
        if self["rrl-rate"] is not None and self["rrl-rate"] <= 0:
            raise usage.UsageError("--rrl-rate must be a positive number of responses a second")
        if self["rrl-slip"] < 0:
            raise usage.UsageError("--rrl-slip must be 0 (never slip) or more")


class SecondaryOptions(_ServiceOptions):
    synopsis = (
        "--key NAME:ALG:SECRET [--key ...] [--listen HOST:PORT ...] [--data-dir DIR] "
        "[--primary-port N]"
    )
    optParameters = [
        ["data-dir", "d", "gitdns-secondary", "Directory keeping the transferred zones."],
        ["primary-port", None, 53, "Port of the primaries (default 53).", int],
    ]

    def opt_key(self, value: str) -> None:
        """TSIG key NAME:ALG:BASE64, e.g. PRIMARY.SECONDARY._transfer.ZONE:SHA256:...
        (a zone and its primary's IPv4; at the root: all its zones); repeat for several."""
        self._add_key(value)

    def postOptions(self) -> None:
        if not self["key"]:
            raise usage.UsageError("at least one --key is required")


class AcmeOptions(_ServiceOptions):
    synopsis = (
        "--key NAME:ALG:SECRET --primary HOST[:PORT] [--directory URL] [--account-key FILE] "
        "[--email ADDR] [--ca-file FILE] [--renew-days N] [--data-dir DIR] [--listen HOST:PORT]"
    )
    optParameters = [
        [
            "primary",
            "p",
            None,
            "The primary, IP[:PORT]: we keep its zones as a hidden secondary and send it "
            "our UPDATEs.",
        ],
        [
            "directory",
            None,
            "https://acme-staging-v02.api.letsencrypt.org/directory",
            "ACME directory URL (default: Let's Encrypt staging).",
        ],
        [
            "account-key",
            None,
            None,
            "ACME account key (PEM), created with mode 0600 if missing "
            "(default DATA-DIR/account.key).",
        ],
        ["email", None, None, "Contact address for the ACME account."],
        ["ca-file", None, None, "CA bundle trusted for the directory's TLS (a private CA)."],
        ["renew-days", None, 30.0, "Renew this many days before expiry.", float],
        ["data-dir", "d", "gitdns-acme", "Directory for the zone copies and the account key."],
        [
            "ns-port",
            None,
            53,
            "Port of the zones' name servers, asked whether they serve the challenge.",
            int,
        ],
        [
            "retry-delay",
            None,
            60.0,
            "Seconds before the first retry of a failed name; doubles with each failure.",
            float,
        ],
        [
            "propagation-timeout",
            None,
            120.0,
            "Seconds to wait for every name server to serve the challenge.",
            float,
        ],
    ]

    def opt_key(self, value: str) -> None:
        """TSIG key NAME:ALG:BASE64 with update access (e.g. acme._update.ZONE, or
        acme._update. for every zone); repeat for several."""
        self._add_key(value)

    def opt_listen(self, value: str) -> None:
        """Address the primary's NOTIFYs reach us on, HOST:PORT or [V6]:PORT; repeat for
        several (default 0.0.0.0:53 and [::]:53)."""
        self["listen"].append(self._address(value))

    def postOptions(self) -> None:
        from gitdns.acme import parse_host_port

        if not self["key"]:
            raise usage.UsageError("at least one --key is required")
        if not self["primary"]:
            raise usage.UsageError("--primary is required")
        try:
            self["primary"] = parse_host_port(self["primary"])
        except ValueError as error:
            raise usage.UsageError(f"--primary: {error}") from None
        if self["retry-delay"] <= 0 or self["propagation-timeout"] <= 0:
            raise usage.UsageError("--retry-delay and --propagation-timeout must be positive")


@implementer(IServiceMaker, IPlugin)
class _Maker:
    """A twistd plugin: its options here, its service made by a gitdns module (imported
    only when it runs, so that `twistd --help` stays quick)."""

    def __init__(self, tapname: str, description: str, options: type, make: str) -> None:
        self.tapname = tapname
        self.description = description
        self.options = options
        self._make = make

    def makeService(self, options: usage.Options) -> Service:
        module, function = self._make.rsplit(".", 1)
        return getattr(importlib.import_module(module), function)(options)


gitdns_primary = _Maker(
    "gitdns-primary",
    "Authoritative DNS primary serving the zones of a git repository.",
    PrimaryOptions,
    "gitdns.primary.make_primary",
)
gitdns_secondary = _Maker(
    "gitdns-secondary",
    "Authoritative DNS secondary: copies zones from a primary by AXFR/IXFR.",
    SecondaryOptions,
    "gitdns.secondary.make_secondary",
)
gitdns_acme = _Maker(
    "gitdns-acme",
    "Certificates for CSRs published in DNS, from an ACME CA by dns-01.",
    AcmeOptions,
    "gitdns.acme.make_acme",
)
