"""The local clone of the zone repository: pygit2 off the reactor thread.

libgit2 blocks, so every operation runs in a one-thread pool: operations on the
repository never overlap, and the reactor keeps answering queries meanwhile.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pygit2
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from gitdns.zones import SourceFile

T = TypeVar("T")

REGULAR_FILE_MODES = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE)


@dataclass(frozen=True)
class Remote:
    url: str
    branch: str | None

    @classmethod
    def parse(cls, text: str, branch: str | None = None) -> Remote:
        """A remote as given on the command line: path or URL, optionally ``#branch``."""
        url, _, fragment = text.partition("#")
        if not url:
            raise ValueError("the remote is empty")
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("", "file", "ssh", "https", "http") and "@" not in url:
            raise ValueError(f"unsupported remote {url!r}: use a path, file://, ssh:// or https://")
        if not scheme and "@" not in url:
            url = os.path.abspath(url)
        return cls(url, branch or fragment or None)


@dataclass(frozen=True)
class Snapshot:
    """The repository's root files at one commit."""

    commit: str
    files: list[SourceFile]


class GitError(Exception):
    """A git operation failed; the message says what and why, without secrets."""


class GitRepository:
    def __init__(self, path: str, remote: Remote) -> None:
        self.path = path
        self.remote = remote
        self.pool = ThreadPool(minthreads=1, maxthreads=1, name="gitdns-git")

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def _run(self, function: Callable[..., T], *args: object) -> defer.Deferred[T]:
        from twisted.internet import reactor

        return threads.deferToThreadPool(reactor, self.pool, function, *args)

    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, "HEAD"))

    # Blocking operations, for the worker thread (or before the reactor runs).

    def clone_blocking(self) -> None:
        try:
            pygit2.clone_repository(
                self.remote.url, self.path, bare=True, checkout_branch=self.remote.branch
            )
        except (pygit2.GitError, KeyError, ValueError, OSError) as error:
            raise GitError(f"cannot clone {self.remote.url}: {error}") from None

    def branch(self, repo: pygit2.Repository) -> str:
        if self.remote.branch:
            return self.remote.branch
        return repo.head.shorthand

    def fetch_blocking(self) -> Snapshot:
        """Fetch the branch and move the local branch to it; return the new files."""
        repo = pygit2.Repository(self.path)
        branch = self.branch(repo)
        try:
            repo.remotes["origin"].fetch([f"+refs/heads/{branch}:refs/remotes/origin/{branch}"])
        except (pygit2.GitError, KeyError, OSError) as error:
            raise GitError(f"cannot fetch {self.remote.url}: {error}") from None
        fetched = repo.references.get(f"refs/remotes/origin/{branch}")
        if fetched is None:
            raise GitError(f"{self.remote.url} has no branch {branch!r}")
        repo.references.create(f"refs/heads/{branch}", fetched.target, force=True)
        return self.snapshot_blocking(repo)

    def snapshot_blocking(self, repo: pygit2.Repository | None = None) -> Snapshot:
        """The root files of the local branch's head."""
        repo = repo or pygit2.Repository(self.path)
        branch = self.branch(repo)
        reference = repo.references.get(f"refs/heads/{branch}")
        if reference is None:
            raise GitError(f"the clone in {self.path} has no branch {branch!r}")
        commit = repo[reference.target].peel(pygit2.Commit)
        files = [
            SourceFile(entry.name, str(entry.id), repo[entry.id].data)
            for entry in commit.tree
            if entry.filemode in REGULAR_FILE_MODES
        ]
        return Snapshot(str(commit.id), files)

    # The same, as Deferreds, serialised in the worker thread.

    def fetch(self) -> defer.Deferred[Snapshot]:
        return self._run(self.fetch_blocking)
