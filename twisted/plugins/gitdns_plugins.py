"""twistd plugins: gitdns-primary (and later gitdns-secondary, gitdns-acme). Thin on purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

if TYPE_CHECKING:
    from gitdns.primary import Primary


class PrimaryOptions(usage.Options):
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
        self["listen"] = []
        self["host-key"] = []

    def opt_listen(self, value: str) -> None:
        """Address to serve DNS on, HOST:PORT or [V6]:PORT; repeat for several
        (default 0.0.0.0:53 and [::]:53)."""
        from gitdns.server import parse_listen

        try:
            self["listen"].append(parse_listen(value))
        except ValueError as error:
            raise usage.UsageError(str(error)) from None

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


@implementer(IServiceMaker, IPlugin)
class PrimaryMaker:
    tapname = "gitdns-primary"
    description = "Authoritative DNS primary serving the zones of a git repository."
    options = PrimaryOptions

    def makeService(self, options: PrimaryOptions) -> Primary:
        from gitdns.primary import make_primary

        return make_primary(options)


gitdns_primary = PrimaryMaker()
