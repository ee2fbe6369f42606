"""SSH keys, pure: fingerprints, pinned host keys, OpenSSH known_hosts files, key files.

Text and bytes in, verdicts out; reading files and talking to servers is gitrepo's job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass

DEFAULT_PORT = 22


class KeyFileError(ValueError):
    """A private key file that cannot be used; the message never quotes the file."""


def fingerprint(blob: bytes) -> str:
    """``SHA256:<unpadded base64>`` of a public key blob, as ``ssh-keygen -l -E sha256``."""
    return _format_digest(hashlib.sha256(blob).digest())


def _format_digest(digest: bytes) -> str:
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_fingerprint(text: str) -> str:
    """The canonical form of a ``SHA256:<base64>`` fingerprint (padding optional)."""
    kind, colon, encoded = text.strip().partition(":")
    encoded = encoded.rstrip("=")
    try:
        digest = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if not colon or kind.upper() != "SHA256" or len(digest) != 32:
        raise ValueError(
            f"{text!r} is not a host key fingerprint: use SHA256:<base64> as printed by "
            "ssh-keygen -l -E sha256"
        )
    return _format_digest(digest)


def _ssh_string(data: bytes, offset: int) -> tuple[bytes, int]:
    """The length-prefixed string at ``offset`` of an SSH wire blob, and the next offset."""
    if offset + 4 > len(data):
        raise ValueError("truncated")
    (length,) = struct.unpack_from(">I", data, offset)
    end = offset + 4 + length
    if end > len(data):
        raise ValueError("truncated")
    return data[offset + 4 : end], end


def key_type(blob: bytes) -> str:
    """The algorithm name a public key blob starts with (``ssh-ed25519``...)."""
    try:
        name, _ = _ssh_string(blob, 0)
        return name.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return "unknown"


def host_port_name(host: str, port: int) -> str:
    """How OpenSSH names a server in known_hosts: ``host``, or ``[host]:port`` off port 22."""
    host = host.lower()
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def _display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _glob(pattern: str) -> re.Pattern[str]:
    # OpenSSH host patterns know only * and ?, compared case-insensitively.
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.IGNORECASE | re.DOTALL,
    )


@dataclass(frozen=True)
class KnownHost:
    """One known_hosts line: ``[@marker] patterns keytype base64 [comment]``."""

    line: int
    marker: str | None  # "revoked", "cert-authority" or None
    patterns: tuple[str, ...]  # plain patterns, "!" negates; empty for a hashed entry
    hashed: tuple[bytes, bytes] | None  # (salt, HMAC-SHA1 of the name) of a |1| entry
    blob: bytes

    def matches(self, name: str) -> bool:
        """Does this line apply to the server called ``name`` (see host_port_name)?"""
        if self.hashed is not None:
            salt, digest = self.hashed
            mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, digest)
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if _glob(pattern.removeprefix("!")).fullmatch(name):
                if negated:
                    return False  # a matching negation excludes the host from the line
                matched = True
        return matched


def parse_known_hosts(text: str) -> list[KnownHost]:
    """The usable lines of a known_hosts file; like ssh, skip lines it cannot read."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = None
        if fields[0].startswith("@"):
            marker = fields.pop(0)[1:]
        if len(fields) < 3:
            continue
        hosts, algorithm, encoded = fields[:3]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if key_type(blob) != algorithm:
            continue
        hashed = None
        patterns: tuple[str, ...] = ()
        if hosts.startswith("|1|"):
            try:
                salt, digest = (base64.b64decode(p, validate=True) for p in hosts[3:].split("|"))
            except (binascii.Error, ValueError):
                continue
            hashed = (salt, digest)
        else:
            patterns = tuple(hosts.split(","))
        entries.append(KnownHost(number, marker, patterns, hashed, blob))
    return entries


@dataclass(frozen=True)
class KnownHosts:
    """A parsed known_hosts file and where it came from (for messages)."""

    path: str
    entries: Sequence[KnownHost]

    @classmethod
    def parse(cls, path: str, text: str) -> KnownHosts:
        return cls(path, parse_known_hosts(text))


def refusal(
    blob: bytes,
    host: str,
    port: int,
    pins: Collection[str] = (),
    known_hosts: KnownHosts | None = None,
) -> str | None:
    """Why the host key ``blob`` offered by ``host:port`` must be refused; None accepts it.

    The key is accepted when it is one of the pinned fingerprints or listed for the
    host in known_hosts; a key marked ``@revoked`` there is refused even if pinned.
    """
    offered = fingerprint(blob)
    name = host_port_name(host, port)
    prefix = f"host key {offered} ({key_type(blob)}) offered by {_display(host, port)}"
    path = known_hosts.path if known_hosts else ""
    lines = [e for e in known_hosts.entries if e.matches(name)] if known_hosts else []
    for entry in lines:
        if entry.marker == "revoked" and entry.blob == blob:
            return f"{prefix} is marked @revoked in {path}:{entry.line}"
    if offered in pins:
        return None
    listed = [e for e in lines if e.marker is None]
    if any(e.blob == blob for e in listed):
        return None
    reasons = []
    if pins:
        pinned = ", ".join(pins)
        reasons.append(f"is {'not' if len(pins) == 1 else 'none of'} the pinned {pinned}")
    if known_hosts is not None:
        if listed:
            others = ", ".join(f"{fingerprint(e.blob)} ({key_type(e.blob)})" for e in listed)
            reasons.append(f"is not the key {path} lists for {name}: {others}")
        elif any(e.marker == "cert-authority" for e in lines):
            reasons.append(
                f"is unknown: {path} trusts {name} only through @cert-authority, "
                "which gitdns does not support (list the host key itself)"
            )
        else:
            reasons.append(f"is unknown: {path} lists no key for {name}")
    return f"{prefix} {', and '.join(reasons)}"


def private_key_encrypted(data: bytes) -> bool:
    """Is this OpenSSH or PEM private key file protected by a passphrase?

    Raises KeyFileError for anything that is not a private key (a .pub file, say).
    """
    text = data.decode("ascii", errors="replace")
    if "-----BEGIN OPENSSH PRIVATE KEY-----" in text:
        body = text.split("-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1]
        body = body.split("-----END OPENSSH PRIVATE KEY-----", 1)[0]
        try:
            raw = base64.b64decode("".join(body.split()), validate=True)
            magic = b"openssh-key-v1\0"
            if not raw.startswith(magic):
                raise ValueError("no magic")
            cipher, _ = _ssh_string(raw, len(magic))
        except (binascii.Error, ValueError):
            raise KeyFileError("is a damaged OpenSSH private key") from None
        return cipher != b"none"
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text:
        return True
    if re.search(r"-----BEGIN (RSA |EC |DSA )?PRIVATE KEY-----", text):
        return "Proc-Type: 4,ENCRYPTED" in text
    raise KeyFileError("is not an OpenSSH or PEM private key")
