"""SSH host key pinning, known_hosts files, key files and ssh remotes (gitdns.hostkeys)."""

from __future__ import annotations

import base64
import os
import struct

import pygit2
from pygit2.enums import CredentialType
from twisted.trial.unittest import SynchronousTestCase

from gitdns.gitrepo import Remote, SshCallbacks, SshCredentials, ssh_endpoint
from gitdns.hostkeys import (
    KeyFileError,
    KnownHosts,
    fingerprint,
    host_port_name,
    key_type,
    parse_fingerprint,
    parse_known_hosts,
    private_key_encrypted,
    refusal,
)

# Keys made with ssh-keygen; fingerprints as `ssh-keygen -l -E sha256` printed them.
ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAILThmt2vUquZpBqxEQ6LBoQv2+HOWDrT4ZRv14H0kL/m"
ED25519_FP = "SHA256:oacj2X9ytsRx4aLOKP03tvTuEw7dy8/wvUCwZY/epAI"
ECDSA = (
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNoWD9W6bWgyck9I6La4rsLfHL5Ef49X"
    "L439nioxPmbQQfGjTvzkLU57YVqfI+4cilOy6Pc/A+cKBqvaC1hIuaw="
)
ECDSA_FP = "SHA256:UdE1TowxIX+uP+XgYreluEBRVi40/qTP0tEAZcsFYQg"
ED25519_BLOB = base64.b64decode(ED25519)
ECDSA_BLOB = base64.b64decode(ECDSA)
# `ssh-keygen -H` of "[git.example]:2222 ssh-ed25519 ..." and "git.example ecdsa-... ...".
HASHED = (
    "|1|tqD0qc4NATDAppbXporb6nMzQpg=|iwnyuC55CUY/qBa5QIHr/9cERtY= ssh-ed25519 " + ED25519 + "\n"
    "|1|qQ8SPZjV6ehVl3fryohWbFIA7YQ=|tHrPCOPI5EC4u97W3O8HkR2gyXA= ecdsa-sha2-nistp256 "
    + ECDSA
    + "\n"
)


class FingerprintTests(SynchronousTestCase):
    def test_same_as_ssh_keygen(self) -> None:
        self.assertEqual(fingerprint(ED25519_BLOB), ED25519_FP)
        self.assertEqual(fingerprint(ECDSA_BLOB), ECDSA_FP)

    def test_parse_canonical_padded_and_lowercase_prefix(self) -> None:
        for text in (ED25519_FP, ED25519_FP + "=", " sha256:" + ED25519_FP[7:] + " "):
            self.assertEqual(parse_fingerprint(text), ED25519_FP)

    def test_parse_rejects_other_forms(self) -> None:
        for text in (
            ED25519_FP[7:],  # no SHA256: prefix
            "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
            "SHA256:" + ED25519_FP[7:30],  # too short
            "SHA256:not base64!",
            "",
        ):
            with self.assertRaises(ValueError):
                parse_fingerprint(text)

    def test_key_type(self) -> None:
        self.assertEqual(key_type(ED25519_BLOB), "ssh-ed25519")
        self.assertEqual(key_type(ECDSA_BLOB), "ecdsa-sha2-nistp256")
        self.assertEqual(key_type(b"\0\0\0\xffssh"), "unknown")


class KnownHostsTests(SynchronousTestCase):
    def test_host_port_names(self) -> None:
        self.assertEqual(host_port_name("Git.Example", 22), "git.example")
        self.assertEqual(host_port_name("git.example", 2222), "[git.example]:2222")

    def test_plain_patterns(self) -> None:
        (entry,) = parse_known_hosts(f"*.example,!bad.example,10.0.0.? ssh-ed25519 {ED25519}\n")
        self.assertTrue(entry.matches("git.example"))
        self.assertTrue(entry.matches("10.0.0.7"))
        self.assertFalse(entry.matches("bad.example"))  # negation wins
        self.assertFalse(entry.matches("10.0.0.17"))
        self.assertFalse(entry.matches("[git.example]:2222"))  # another port, another name

    def test_hashed_entries(self) -> None:
        ed25519, ecdsa = parse_known_hosts(HASHED)
        self.assertTrue(ed25519.matches("[git.example]:2222"))
        self.assertFalse(ed25519.matches("git.example"))
        self.assertTrue(ecdsa.matches("git.example"))

    def test_markers_comments_and_unreadable_lines(self) -> None:
        text = (
            "# comment\n"
            "\n"
            f"@revoked * ssh-ed25519 {ED25519}\n"
            f"@cert-authority *.example ssh-ed25519 {ED25519}\n"
            "only-two fields\n"
            f"host ssh-rsa {ED25519}\n"  # the blob is not an RSA key
            "host ssh-ed25519 not-base64!\n"
            "host 2048 65537 1234567\n"  # SSH1
            f"git.example ecdsa-sha2-nistp256 {ECDSA} comment words\n"
        )
        entries = parse_known_hosts(text)
        self.assertEqual(
            [(e.line, e.marker) for e in entries],
            [(3, "revoked"), (4, "cert-authority"), (9, None)],
        )


class RefusalTests(SynchronousTestCase):
    def known(self, text: str) -> KnownHosts:
        return KnownHosts.parse("/k/known_hosts", text)

    def test_pinned_key_accepted(self) -> None:
        self.assertIsNone(refusal(ED25519_BLOB, "git.example", 2222, [ECDSA_FP, ED25519_FP]))

    def test_other_key_than_pinned(self) -> None:
        self.assertEqual(
            refusal(ED25519_BLOB, "git.example", 2222, [ECDSA_FP]),
            f"host key {ED25519_FP} (ssh-ed25519) offered by git.example:2222 "
            f"is not the pinned {ECDSA_FP}",
        )
        self.assertIn(
            f"is none of the pinned {ECDSA_FP}, SHA256:",
            refusal(ED25519_BLOB, "::1", 22, [ECDSA_FP, "SHA256:" + "A" * 43]) or "",
        )
        self.assertIn("offered by [::1]:22", refusal(ED25519_BLOB, "::1", 22, [ECDSA_FP]) or "")

    def test_known_hosts_plain_and_hashed(self) -> None:
        plain = self.known(f"[git.example]:2222 ssh-ed25519 {ED25519}\n")
        self.assertIsNone(refusal(ED25519_BLOB, "git.example", 2222, known_hosts=plain))
        self.assertIsNone(
            refusal(ED25519_BLOB, "git.example", 2222, known_hosts=self.known(HASHED))
        )
        self.assertIsNone(refusal(ECDSA_BLOB, "git.example", 22, known_hosts=self.known(HASHED)))

    def test_known_host_with_another_key(self) -> None:
        self.assertEqual(
            refusal(ED25519_BLOB, "git.example", 22, known_hosts=self.known(HASHED)),
            f"host key {ED25519_FP} (ssh-ed25519) offered by git.example:22 is not the key "
            f"/k/known_hosts lists for git.example: {ECDSA_FP} (ecdsa-sha2-nistp256)",
        )

    def test_unknown_host(self) -> None:
        self.assertEqual(
            refusal(ED25519_BLOB, "other.example", 2222, known_hosts=self.known(HASHED)),
            f"host key {ED25519_FP} (ssh-ed25519) offered by other.example:2222 is unknown: "
            "/k/known_hosts lists no key for [other.example]:2222",
        )
        self.assertIn("lists no key", refusal(ED25519_BLOB, "h", 22, known_hosts=self.known("")))

    def test_cert_authority_is_not_supported(self) -> None:
        known = self.known(f"@cert-authority *.example ssh-ed25519 {ED25519}\n")
        reason = refusal(ED25519_BLOB, "git.example", 22, known_hosts=known) or ""
        self.assertIn("only through @cert-authority, which gitdns does not support", reason)

    def test_revoked_refused_even_when_pinned(self) -> None:
        known = self.known(f"git.example ssh-ed25519 {ED25519}\n@revoked * ssh-ed25519 {ED25519}\n")
        self.assertEqual(
            refusal(ED25519_BLOB, "git.example", 22, [ED25519_FP], known),
            f"host key {ED25519_FP} (ssh-ed25519) offered by git.example:22 "
            "is marked @revoked in /k/known_hosts:2",
        )

    def test_pins_and_known_hosts_either_accepts(self) -> None:
        known = self.known(f"git.example ecdsa-sha2-nistp256 {ECDSA}\n")
        self.assertIsNone(refusal(ED25519_BLOB, "git.example", 22, [ED25519_FP], known))
        self.assertIsNone(refusal(ECDSA_BLOB, "git.example", 22, [ED25519_FP], known))
        reason = refusal(ED25519_BLOB, "git.example", 22, [ECDSA_FP], known) or ""
        self.assertIn(f"is not the pinned {ECDSA_FP}, and is not the key /k/known_hosts", reason)


def openssh_private_key(cipher: bytes) -> bytes:
    """The armour and header of an OpenSSH private key file; nothing secret in it."""

    def string(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    body = b"openssh-key-v1\0" + string(cipher) + string(b"none") + string(b"") + b"\0\0\0\1"
    encoded = base64.b64encode(body).decode()
    return (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{encoded}\n-----END OPENSSH PRIVATE KEY-----\n"
    ).encode()


class PrivateKeyTests(SynchronousTestCase):
    def test_openssh_format(self) -> None:
        self.assertFalse(private_key_encrypted(openssh_private_key(b"none")))
        self.assertTrue(private_key_encrypted(openssh_private_key(b"aes256-ctr")))

    def test_pem_formats(self) -> None:
        pem = "-----BEGIN RSA PRIVATE KEY-----\n{}MIIB\n-----END RSA PRIVATE KEY-----\n"
        self.assertFalse(private_key_encrypted(pem.format("").encode()))
        encrypted = pem.format("Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n")
        self.assertTrue(private_key_encrypted(encrypted.encode()))
        pkcs8 = (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
        self.assertTrue(private_key_encrypted(pkcs8))

    def test_not_a_private_key(self) -> None:
        for data in (f"ssh-ed25519 {ED25519} me@host\n".encode(), b"\xff\xfe secret"):
            with self.assertRaises(KeyFileError) as caught:
                private_key_encrypted(data)
            self.assertNotIn("secret", str(caught.exception))
            self.assertNotIn(ED25519[:20], str(caught.exception))
        damaged = (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----"
        )
        with self.assertRaises(KeyFileError):
            private_key_encrypted(damaged)


class SshRemoteTests(SynchronousTestCase):
    def test_endpoints(self) -> None:
        cases = {
            "ssh://git@git.example:2222/zones.git": ("git", "git.example", 2222),
            "ssh://git.example/zones.git": (None, "git.example", 22),
            "git+ssh://git@[::1]:2222/zones.git": ("git", "::1", 2222),
            "git@git.example:zones.git": ("git", "git.example", 22),
            "git@[::1]:zones.git": ("git", "::1", 22),
        }
        for url, (user, host, port) in cases.items():
            endpoint = ssh_endpoint(url)
            assert endpoint is not None, url
            self.assertEqual((endpoint.user, endpoint.host, endpoint.port), (user, host, port))
        for url in ("https://git.example/zones.git", "/srv/zones.git", "file:///srv/zones"):
            self.assertIsNone(ssh_endpoint(url))

    def test_ssh_remote_always_verifies_host_keys(self) -> None:
        remote = Remote.parse("git@git.example:zones.git#main")
        self.assertEqual(remote.branch, "main")
        self.assertEqual(remote.ssh, SshCredentials())
        assert remote.ssh is not None
        self.assertEqual(remote.ssh.known_hosts_file(), os.path.expanduser("~/.ssh/known_hosts"))
        pinned = SshCredentials(host_keys=(ED25519_FP,))
        self.assertIsNone(pinned.known_hosts_file())

    def test_ssh_options_need_an_ssh_remote(self) -> None:
        with self.assertRaises(ValueError):
            Remote.parse("https://git.example/zones.git", ssh=SshCredentials(key_file="/k"))
        self.assertIsNone(Remote.parse("https://git.example/zones.git").ssh)

    def test_display_hides_a_password(self) -> None:
        remote = Remote.parse("https://me:s3cret@git.example/zones.git")
        self.assertEqual(remote.display, "https://me:***@git.example/zones.git")


class SshCredentialsTests(SynchronousTestCase):
    def write(self, data: bytes) -> str:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_encrypted_key_needs_a_passphrase(self) -> None:
        key = self.write(openssh_private_key(b"aes256-ctr"))
        with self.assertRaises(ValueError) as caught:
            SshCredentials.from_options(key)
        self.assertIn("is encrypted: give its passphrase", str(caught.exception))
        passphrase = self.write(b"s3cret\n")
        credentials = SshCredentials.from_options(key, passphrase)
        self.assertEqual(credentials.passphrase, "s3cret")
        self.assertNotIn("s3cret", repr(Remote("ssh://h/r", None, credentials)))

    def test_unreadable_files_are_named_not_quoted(self) -> None:
        public = self.write(f"ssh-ed25519 {ED25519} s3cret\n".encode())
        for args in ((public,), (self.mktemp(),), (None, self.mktemp()), (None, None, (), "/nx")):
            with self.assertRaises(ValueError) as caught:
                SshCredentials.from_options(*args)  # type: ignore[arg-type]
            self.assertNotIn("s3cret", str(caught.exception))

    def test_pins_are_checked_and_deduplicated(self) -> None:
        credentials = SshCredentials.from_options(host_keys=(ED25519_FP, ED25519_FP + "="))
        self.assertEqual(credentials.host_keys, (ED25519_FP,))
        with self.assertRaises(ValueError):
            SshCredentials.from_options(host_keys=("MD5:00",))


class SshCallbacksTests(SynchronousTestCase):
    def callbacks(self) -> SshCallbacks:
        ssh = SshCredentials(key_file="/k/id", host_keys=(ED25519_FP,))
        return SshCallbacks(Remote.parse("ssh://git@git.example:2222/zones.git", ssh=ssh))

    def test_pygit2_certificate_check_refuses(self) -> None:
        callbacks = self.callbacks()
        self.assertFalse(callbacks.certificate_check(None, True, b"git.example"))
        self.assertIn("refusing", callbacks.refused or "")

    def test_key_offered_once(self) -> None:
        callbacks = self.callbacks()
        username = callbacks.credentials("u", None, CredentialType.USERNAME)
        self.assertEqual(username.credential_tuple, ("git",))
        allowed = CredentialType.SSH_KEY | CredentialType.SSH_CUSTOM
        key = callbacks.credentials("u", "git", allowed)
        self.assertEqual(key.credential_tuple, ("git", None, "/k/id", ""))
        with self.assertRaises(pygit2.GitError) as caught:
            callbacks.credentials("u", "git", allowed)
        self.assertEqual(
            str(caught.exception), "git.example:2222 refused the key /k/id for user git"
        )
