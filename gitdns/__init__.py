"""gitdns: authoritative DNS served from a git repository."""

from gitdns import speedups

speedups.install()
