"""The local clone of the zone repository: pygit2 off the reactor thread.

libgit2 blocks, so every operation runs in a one-thread pool: operations on the
repository never overlap, and the reactor keeps answering queries meanwhile.
"""

from __future__ import annotations

import ctypes
import enum
import getpass
import hashlib
import os
import re
import urllib.parse
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pygit2
from pygit2.enums import CredentialType
from pygit2.ffi import C, ffi
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from gitdns import hostkeys
from gitdns.commits import Applied, Replayed, UpdateItem, apply_updates, replay
from gitdns.keys import is_key_file
from gitdns.recovery import Recovery, keep_reflog, recover
from gitdns.zones import LoadedZone, SourceFile

T = TypeVar("T")

REGULAR_FILE_MODES = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE)

SSH_SCHEMES = ("ssh", "ssh+git", "git+ssh")
# scp-like syntax, as git reads it: user@host:path or user@[host]:path.
SCP_LIKE = re.compile(r"(?P<user>[^@/:]+)@(?P<host>\[[^\]/]+\]|[^:/\[\]]+):(?P<path>.+)")


@dataclass(frozen=True)
class SshEndpoint:
    user: str | None
    host: str
    port: int


def ssh_endpoint(url: str) -> SshEndpoint | None:
    """Where an ssh remote connects to (as libgit2 will), or None for other remotes."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in SSH_SCHEMES:
        if not parts.hostname:
            raise ValueError("the ssh remote names no host")
        try:
            port = parts.port or hostkeys.DEFAULT_PORT
        except ValueError:
            raise ValueError("the ssh remote has an invalid port") from None
        return SshEndpoint(urllib.parse.unquote(parts.username or "") or None, parts.hostname, port)
    scp = SCP_LIKE.fullmatch(url) if not parts.scheme else None
    if scp is None:
        return None
    return SshEndpoint(scp["user"], scp["host"].strip("[]"), hostkeys.DEFAULT_PORT)


@dataclass(frozen=True)
class SshCredentials:
    """The client key for an ssh remote and the host keys trusted for it.

    With neither pinned fingerprints nor a known_hosts file, ~/.ssh/known_hosts is used.
    """

    key_file: str | None = None
    passphrase: str | None = field(default=None, repr=False)  # a secret: never shown
    host_keys: tuple[str, ...] = ()  # SHA256:<base64> fingerprints
    known_hosts: str | None = None

    @classmethod
    def from_options(
        cls,
        key_file: str | None = None,
        passphrase_file: str | None = None,
        host_keys: tuple[str, ...] = (),
        known_hosts: str | None = None,
    ) -> SshCredentials:
        """Check the files named on the command line; ValueError says what is wrong."""
        passphrase = None
        if passphrase_file:
            try:
                with open(passphrase_file, encoding="utf-8") as f:
                    passphrase = f.read().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                reason = _os_reason(error)
                raise ValueError(f"cannot read --ssh-key-passphrase-file: {reason}") from None
        if key_file:
            key_file = os.path.abspath(key_file)
            try:
                with open(key_file, "rb") as f:
                    encrypted = hostkeys.private_key_encrypted(f.read())
            except OSError as error:
                raise ValueError(f"cannot read --ssh-key {key_file}: {_os_reason(error)}") from None
            except hostkeys.KeyFileError as error:
                raise ValueError(f"--ssh-key {key_file} {error}") from None
            if encrypted and passphrase is None:
                raise ValueError(
                    f"--ssh-key {key_file} is encrypted: give its passphrase in a file "
                    "with --ssh-key-passphrase-file"
                )
        if known_hosts:
            known_hosts = os.path.abspath(known_hosts)
            if not os.access(known_hosts, os.R_OK):
                raise ValueError(f"cannot read --known-hosts {known_hosts}")
        pins = tuple(dict.fromkeys(hostkeys.parse_fingerprint(k) for k in host_keys))
        return cls(key_file, passphrase, pins, known_hosts)

    def known_hosts_file(self) -> str | None:
        if self.known_hosts or self.host_keys:
            return self.known_hosts
        return os.path.expanduser("~/.ssh/known_hosts")


def _os_reason(error: Exception) -> str:
    # strerror only: a decode error's text quotes bytes of the file, which may be secret.
    return getattr(error, "strerror", None) or type(error).__name__


@dataclass(frozen=True)
class Remote:
    url: str
    branch: str | None
    ssh: SshCredentials | None = None

    @classmethod
    def parse(
        cls, text: str, branch: str | None = None, ssh: SshCredentials | None = None
    ) -> Remote:
        """A remote as given on the command line: path or URL, optionally ``#branch``.

        An ssh remote always gets SshCredentials (host keys are always verified).
        """
        url, _, fragment = text.partition("#")
        if not url:
            raise ValueError("the remote is empty")
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("", "file", "https", "http", *SSH_SCHEMES) and "@" not in url:
            raise ValueError(f"unsupported remote {url!r}: use a path, file://, ssh:// or https://")
        if not scheme and "@" not in url:
            url = os.path.abspath(url)
        if ssh_endpoint(url) is not None:
            ssh = ssh or SshCredentials()
        elif ssh is not None:
            raise ValueError("--ssh-key, --host-key and --known-hosts need an ssh remote")
        return cls(url, branch or fragment or None, ssh)

    @property
    def display(self) -> str:
        """The URL for messages: without a password it may carry."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Snapshot:
    """The repository's root files at one commit."""

    commit: str
    files: list[SourceFile]
    # Local commits (our UPDATEs) the remote does not have yet.
    ahead: int = 0

    @property
    def key_files(self) -> list[SourceFile]:
        return [file for file in self.files if file.key]


class PushOutcome(enum.Enum):
    PUSHED = "pushed"
    UP_TO_DATE = "up to date"
    # The remote moved on: fetch, replay, push again.
    REJECTED = "rejected"


class GitError(Exception):
    """A git operation failed; the message says what and why, without secrets."""


class _CertHostkey(ctypes.Structure):
    """libgit2's git_cert_hostkey (git2/cert.h, libgit2 >= 1.1).

    pygit2 declares only its first fields (the MD5/SHA-1 digests), so we read the raw
    host key through this full declaration of the same struct.
    """

    _fields_ = [
        ("cert_type", ctypes.c_int),
        ("type", ctypes.c_int),
        ("hash_md5", ctypes.c_ubyte * 16),
        ("hash_sha1", ctypes.c_ubyte * 20),
        ("hash_sha256", ctypes.c_ubyte * 32),
        ("raw_type", ctypes.c_int),
        ("hostkey", ctypes.c_void_p),
        ("hostkey_len", ctypes.c_size_t),
    ]


GIT_CERT_SSH_SHA256 = 1 << 2
GIT_CERT_SSH_RAW = 1 << 3


class SshCallbacks(pygit2.RemoteCallbacks):
    """Credentials and host key verification for one git operation on an ssh remote.

    Why this is sound: libgit2 (libssh2 backend) calls the certificate check once per
    connection, right after the key exchange, in which the server proved it holds the
    host key, and before authenticating or running git-upload-pack.  libgit2 hands
    that check the host key of this very session (git_cert_hostkey: raw key + SHA-256),
    but pygit2's wrapper drops it and passes certificate=None (and accepts any SSH host
    unless told otherwise).  So we install our own C callback, made with cffi, in
    place of pygit2's and read the key from the struct libgit2 passes: no second
    connection (no ssh-keyscan TOCTOU), and any failure to see the key refuses.
    """

    def __init__(self, remote: Remote) -> None:
        super().__init__()
        endpoint = ssh_endpoint(remote.url)
        assert endpoint is not None
        self.endpoint = endpoint
        self.ssh = remote.ssh or SshCredentials()
        self.user = endpoint.user or getpass.getuser()
        self.refused: str | None = None
        self._key_tried = False

    def __setattr__(self, name: str, value: Any) -> None:
        # pygit2 stores each options struct on its payload (this object) after plugging
        # its callbacks in and before handing it to libgit2: swap the certificate check.
        if name in ("fetch_options", "push_options"):
            value.callbacks.certificate_check = _check_host_key
        elif name == "remote_callbacks":
            value.certificate_check = _check_host_key
        super().__setattr__(name, value)

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        # Only reached if the swap above did not happen (a pygit2 change): refuse.
        self.refused = "cannot see the SSH host key with this pygit2 version; refusing"
        return False

    def host_key_refusal(self, cert: Any, host: str) -> str | None:
        """Why the key libgit2 received must be refused, or None to go on."""
        if cert.cert_type != C.GIT_CERT_HOSTKEY_LIBSSH2:
            return "the ssh connection offered no host key"
        hostkey = _CertHostkey.from_address(int(ffi.cast("uintptr_t", cert)))
        if hostkey.type & GIT_CERT_SSH_RAW == 0 or hostkey.type & GIT_CERT_SSH_SHA256 == 0:
            return "libgit2 did not pass the SSH host key"
        blob = ctypes.string_at(hostkey.hostkey, hostkey.hostkey_len)
        # libgit2 hashed the key itself: a mismatch means we misread its struct.
        if hashlib.sha256(blob).digest() != bytes(hostkey.hash_sha256):
            return "cannot read the SSH host key libgit2 passed"
        if host.lower() != self.endpoint.host.lower():
            return f"libgit2 connected to {host!r}, not to the remote's {self.endpoint.host!r}"
        self._key_tried = False  # a new connection: the key may be offered again
        return hostkeys.refusal(
            blob, host, self.endpoint.port, self.ssh.host_keys, self._known_hosts()
        )

    def _known_hosts(self) -> hostkeys.KnownHosts | None:
        # Read at each connection, as ssh does, so edits apply without a restart.
        path = self.ssh.known_hosts_file()
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return hostkeys.KnownHosts.parse(path, f.read())
        except FileNotFoundError:
            if path != self.ssh.known_hosts:  # the default file may be missing
                return hostkeys.KnownHosts(path, [])
            raise

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.Username | pygit2.Keypair:
        if allowed_types & CredentialType.USERNAME:
            return pygit2.Username(self.user)
        if not allowed_types & CredentialType.SSH_KEY:
            self.refused = f"{self._server()} accepts no public key for user {self.user}"
        elif not self.ssh.key_file:
            self.refused = f"{self._server()} wants a key for user {self.user}: give --ssh-key"
        elif self._key_tried:  # libgit2 asks again after a refusal, forever
            self.refused = (
                f"{self._server()} refused the key {self.ssh.key_file} for user {self.user}"
            )
        if self.refused:
            raise pygit2.GitError(self.refused)
        self._key_tried = True
        return pygit2.Keypair(self.user, None, self.ssh.key_file, self.ssh.passphrase or "")

    def _server(self) -> str:
        host, port = self.endpoint.host, self.endpoint.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@ffi.callback("git_transport_certificate_check_cb", error=C.GIT_ECERTIFICATE)
def _check_host_key(cert: Any, valid: int, host: Any, payload: Any) -> int:
    callbacks = ffi.from_handle(payload)
    try:
        callbacks.refused = callbacks.host_key_refusal(cert, ffi.string(host).decode())
    except Exception as error:  # fail closed, with a reason
        callbacks.refused = f"cannot check the SSH host key: {error}"
    return C.GIT_ECERTIFICATE if callbacks.refused else 0


_syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)


def sync_filesystem(path: str) -> None:
    """Put every write to the file system holding path on disk (syncfs(2): one flush
    for all the files of a commit, where fsync would flush each)."""
    if _syncfs is None:
        os.sync()
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(descriptor) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs {path}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


def _blobs(known: Mapping[str, LoadedZone], made: Applied | Replayed | None) -> set[str]:
    """Blob ids of zones parsed already: known ones and those just made."""
    blobs = {loaded.blob_id for loaded in known.values()}
    if made is not None:
        blobs.update(loaded.blob_id for loaded in made.zones.values())
    return blobs


# How remotes (and libgit2's local transport) say that the branch moved on.
_NOT_FAST_FORWARD = re.compile(r"non-?fast-?forward|fetch first|not a fast.forward", re.I)

# Durability is ours (sync_filesystem, at the moments it matters): libgit2's own fsync
# of every object and reference costs a disk flush each, in pushes too. A remote that
# stops answering must not hold the worker thread for ever.
pygit2.option(pygit2.GIT_OPT_ENABLE_FSYNC_GITDIR, 0)
pygit2.option(pygit2.GIT_OPT_SET_SERVER_CONNECT_TIMEOUT, 15_000)
pygit2.option(pygit2.GIT_OPT_SET_SERVER_TIMEOUT, 120_000)


class GitRepository:
    def __init__(self, path: str, remote: Remote) -> None:
        self.path = path
        self.remote = remote
        self.pool = ThreadPool(minthreads=1, maxthreads=1, name="gitdns-git")
        # Pushes run in a thread of their own: a slow remote, or a big pack to send,
        # must not hold back the commits that UPDATEs wait for.
        self.push_pool = ThreadPool(minthreads=1, maxthreads=1, name="gitdns-git-push")
        # Worker-thread state, so that a stream of UPDATEs does not read back what it
        # wrote: the text of the zone files of the last commit (blob id -> text), and
        # how far the last snapshot's commit was ahead of the remote's.
        self._texts: dict[str, str] = {}
        self._ahead: tuple[pygit2.Oid, pygit2.Oid, int] | None = None
        # The root files of the last snapshot, by name, and its tree: the next snapshot
        # looks only at what differs (a reload of 10,000 zones reads one file).
        self._files: tuple[pygit2.Oid, dict[str, SourceFile]] | None = None

    def start(self) -> None:
        self.pool.start()
        self.push_pool.start()

    def stop(self) -> None:
        self.pool.stop()
        self.push_pool.stop()

    def _run(self, function: Callable[..., T], *args: object) -> defer.Deferred[T]:
        from twisted.internet import reactor

        return threads.deferToThreadPool(reactor, self.pool, function, *args)

    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, "HEAD"))

    def clear_stale_locks(self) -> list[str]:
        """Remove lock files a killed process left behind (before any git operation).

        The clone is ours alone and nothing runs in it yet: a lock now can only be
        stale, and left in place it would refuse every commit for ever.
        """
        removed = []
        for top, _, files in os.walk(self.path):
            if os.path.basename(top) == "objects" or "/objects/" in top + "/":
                continue
            for name in files:
                if name.endswith(".lock"):
                    os.unlink(os.path.join(top, name))
                    removed.append(os.path.relpath(os.path.join(top, name), self.path))
        return removed

    # Blocking operations, for the worker thread (or before the reactor runs).

    def callbacks(self) -> SshCallbacks | None:
        """Fresh callbacks for one network operation (None: libgit2's defaults).

        Decided by the URL, not by remote.ssh: an ssh remote is never left to pygit2,
        which would accept any host key.
        """
        return SshCallbacks(self.remote) if ssh_endpoint(self.remote.url) else None

    def _failure(
        self, verb: str, callbacks: pygit2.RemoteCallbacks | None, error: Exception
    ) -> GitError:
        reason = getattr(callbacks, "refused", None) or error
        return GitError(f"cannot {verb} {self.remote.display}: {reason}")

    def clone_blocking(self) -> None:
        callbacks = self.callbacks()
        try:
            pygit2.clone_repository(
                self.remote.url,
                self.path,
                bare=True,
                checkout_branch=self.remote.branch,
                callbacks=callbacks,
            )
        except (pygit2.GitError, KeyError, ValueError, OSError) as error:
            raise self._failure("clone", callbacks, error) from None
        sync_filesystem(self.path)

    def recover_blocking(self) -> Recovery | None:
        """After a power cut: the branch back on a whole commit (gitdns.recovery)."""
        repo = pygit2.Repository(self.path)
        keep_reflog(repo)
        branch = self.remote.branch
        if not branch:
            # HEAD names the branch without resolving it: its file may be what is torn.
            branch = str(repo.references["HEAD"].target).removeprefix("refs/heads/")
        recovered = recover(self.path, branch)
        if recovered is not None:
            sync_filesystem(self.path)
        return recovered

    def branch(self, repo: pygit2.Repository) -> str:
        if self.remote.branch:
            return self.remote.branch
        return repo.head.shorthand

    def fetch_blocking(self, known: Mapping[str, LoadedZone]) -> tuple[Snapshot, Replayed | None]:
        """Fetch the branch and bring the local branch up to it.

        Local commits the remote lacks (acknowledged UPDATEs not pushed yet) are kept:
        when the remote moved too, they are replayed on its head (commits.replay).
        known: the parsed zones by file name, so replaying need not parse them again.
        """
        repo = pygit2.Repository(self.path)
        branch = self.branch(repo)
        callbacks = self.callbacks()
        try:
            # The URL given now, not the clone's origin: the host keys checked are its.
            repo.remotes.create_anonymous(self.remote.url).fetch(
                [f"+refs/heads/{branch}:refs/remotes/origin/{branch}"], callbacks=callbacks
            )
        except (pygit2.GitError, KeyError, OSError) as error:
            raise self._failure("fetch", callbacks, error) from None
        fetched = repo.references.get(f"refs/remotes/origin/{branch}")
        if fetched is None:
            raise GitError(f"{self.remote.display} has no branch {branch!r}")
        local = repo.references.get(f"refs/heads/{branch}")
        replayed = None
        # What was fetched is on disk before the local branch may name it.
        sync_filesystem(self.path)
        if local is None or repo.descendant_of(fetched.target, local.target):
            repo.references.create(f"refs/heads/{branch}", fetched.target, force=True)
        elif local.target != fetched.target and not repo.descendant_of(
            local.target, fetched.target
        ):
            replayed = replay(repo, local.target, fetched.target, known)
            sync_filesystem(self.path)
            # Moved only now that every commit is replayed: a crash before this line
            # leaves the old local commits in place, to be replayed again.
            local.set_target(replayed.head, "gitdns: replay updates on the remote's head")
        return self.snapshot_blocking(repo, _blobs(known, replayed)), replayed

    def commit_updates_blocking(
        self, items: list[UpdateItem], known: Mapping[str, LoadedZone], now: int
    ) -> tuple[Applied, Snapshot | None]:
        """Apply UPDATEs on the local branch as one commit, durable when this returns."""
        repo = pygit2.Repository(self.path)
        reference = repo.references[f"refs/heads/{self.branch(repo)}"]
        parent = repo[reference.target].peel(pygit2.Commit)
        applied = apply_updates(repo, parent, items, known, author_time=now, texts=self._texts)
        if applied.commit is None:
            return applied, None
        self._texts = applied.texts
        reference.set_target(applied.commit, "gitdns: dynamic update")
        # One flush for the objects and the branch, before the UPDATEs are answered. A
        # power cut before it ends may leave the branch naming torn objects: the next
        # start undoes that commit (recover_blocking), which nobody was answered for.
        sync_filesystem(self.path)
        return applied, self.snapshot_blocking(repo, _blobs(known, applied))

    def push_blocking(self) -> PushOutcome:
        """Push the local branch; never forced. Raises GitError when unreachable."""
        repo = pygit2.Repository(self.path)
        branch = self.branch(repo)
        local = repo.references[f"refs/heads/{branch}"].target
        tracking = repo.references.get(f"refs/remotes/origin/{branch}")
        if tracking is not None and tracking.target == local:
            return PushOutcome.UP_TO_DATE
        callbacks = self.callbacks() or pygit2.RemoteCallbacks()
        rejections: list[str] = []
        callbacks.push_update_reference = lambda ref, message: (
            rejections.append(message) if message else None
        )
        try:
            repo.remotes.create_anonymous(self.remote.url).push(
                [f"refs/heads/{branch}:refs/heads/{branch}"], callbacks=callbacks
            )
        except pygit2.GitError as error:
            # libgit2's local transport refuses a non-fast-forward push itself.
            if _NOT_FAST_FORWARD.search(str(error)):
                return PushOutcome.REJECTED
            raise self._failure("push to", callbacks, error) from None
        except (KeyError, OSError) as error:
            raise self._failure("push to", callbacks, error) from None
        if rejections:
            # Only a remote that moved on is answered by replaying; anything else (a
            # lock held, a hook refusing) is a failure to retry later.
            if any(_NOT_FAST_FORWARD.search(message) for message in rejections):
                return PushOutcome.REJECTED
            raise GitError(f"cannot push to {self.remote.display}: {'; '.join(rejections)}")
        if os.path.isdir(self.remote.url):
            # A remote on a local disk: what it took stays when the power goes.
            sync_filesystem(self.remote.url)
        repo.references.create(f"refs/remotes/origin/{branch}", local, force=True)
        return PushOutcome.PUSHED

    def snapshot_blocking(
        self, repo: pygit2.Repository | None = None, loaded: Container[str] = ()
    ) -> Snapshot:
        """The root files of the local branch's head.

        Zone files whose blob is in loaded (already parsed) are not read: their data is
        left empty, so a reload of many zones reads only what changed.
        """
        repo = repo or pygit2.Repository(self.path)
        branch = self.branch(repo)
        reference = repo.references.get(f"refs/heads/{branch}")
        if reference is None:
            raise GitError(f"the clone in {self.path} has no branch {branch!r}")
        commit = repo[reference.target].peel(pygit2.Commit)
        by_name = self._root_files(repo, commit.tree, loaded)
        self._files = (commit.tree.id, by_name)
        files = list(by_name.values())
        tracking = repo.references.get(f"refs/remotes/origin/{branch}")
        ahead = 0
        if tracking is not None and tracking.target != commit.id:
            ahead = self._ahead_of(repo, commit, tracking.target)
        self._ahead = (commit.id, tracking.target, ahead) if tracking is not None else None
        return Snapshot(str(commit.id), files, ahead)

    def _root_files(
        self, repo: pygit2.Repository, tree: pygit2.Tree, loaded: Container[str]
    ) -> dict[str, SourceFile]:
        """The regular files at the root of tree, by name; each read unless it is a zone
        in loaded. Starts from the last snapshot's when there is one: only the files
        that differ from its tree are read (and those whose data is wanted now but was
        not read then)."""

        def source(name: str, blob_id: pygit2.Oid) -> SourceFile:
            key = is_key_file(name)
            data = b"" if not key and str(blob_id) in loaded else repo[blob_id].data
            return SourceFile(name, str(blob_id), data, key)

        if self._files is None or self._files[0] not in repo:
            return {
                entry.name: source(entry.name, entry.id)
                for entry in tree
                if entry.filemode in REGULAR_FILE_MODES
            }
        last_tree, last_files = self._files
        by_name = dict(last_files)
        for delta in repo[last_tree].diff_to_tree(tree).deltas:
            by_name.pop(delta.old_file.path, None)
            by_name.pop(delta.new_file.path, None)
            new = delta.new_file
            if (
                delta.status != pygit2.GIT_DELTA_DELETED
                and "/" not in new.path
                and new.mode in REGULAR_FILE_MODES
            ):
                by_name[new.path] = source(new.path, new.id)
        for name, file in by_name.items():
            if file.key:
                continue
            if file.blob_id in loaded:
                if file.data:  # parsed since: its text need not stay in memory
                    by_name[name] = SourceFile(name, file.blob_id, b"")
            elif not file.data:
                by_name[name] = source(name, pygit2.Oid(hex=file.blob_id))
        return by_name

    def _ahead_of(
        self, repo: pygit2.Repository, commit: pygit2.Commit, tracking: pygit2.Oid
    ) -> int:
        """How many commits commit has that tracking lacks (one more than its parent had,
        when the last snapshot was of the parent: no walk through the history)."""
        if self._ahead is not None:
            last, last_tracking, ahead = self._ahead
            if last_tracking == tracking and commit.parent_ids == [last]:
                return ahead + 1
        return repo.ahead_behind(commit.id, tracking)[0]

    # The same, as Deferreds, serialised in the worker thread.

    def run(self, function: Callable[..., T], *args: object) -> defer.Deferred[T]:
        """Run function(*args) in the worker thread, after the operations before it."""
        return self._run(function, *args)

    def push(self) -> defer.Deferred[PushOutcome]:
        """push_blocking in the push thread, beside the worker thread's operations (the
        caller keeps it from running with a fetch: both write the remote-tracking
        branch)."""
        from twisted.internet import reactor

        return threads.deferToThreadPool(reactor, self.push_pool, self.push_blocking)
