"""The clone after a power cut: the branch back on a commit whose objects are all on disk.

A commit of UPDATEs writes its objects and moves the branch, then flushes the file
system once (gitrepo.sync_filesystem) before anything is answered. A power cut before
that flush ends may leave loose objects empty or torn, and the branch (or its reflog)
naming them. Nothing written then was acknowledged, so undoing it loses nothing.

Torn objects must go, not only be skipped: libgit2 does not write an object whose file
exists, so the same UPDATE sent again would make a commit naming the torn file.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pygit2

# A commit's objects are written moments before its branch move; objects older than
# the last move recorded by more than this were flushed by an earlier commit, and only
# younger ones are read back (a clone holds a few loose objects per UPDATE).
RECENT = 10.0
_REFLOG_LINE = re.compile(rb"^([0-9a-f]{40}) ([0-9a-f]{40}) ")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Recovery:
    """What recover() undid: torn object files removed, and the branch moved."""

    removed: tuple[str, ...]
    moved_from: str | None = None
    moved_to: str | None = None


def keep_reflog(repo: pygit2.Repository) -> None:
    """Have the branch's moves logged, as recover() needs: a bare clone logs none."""
    config = repo.config
    if "core.logAllRefUpdates" not in config or not config.get_bool("core.logAllRefUpdates"):
        config["core.logAllRefUpdates"] = True


def recover(path: str, branch: str) -> Recovery | None:
    """Undo what a power cut left half-written in the bare clone at path (None: nothing).

    Raises pygit2.GitError when no commit the branch ever named is whole.
    """
    repo = pygit2.Repository(path)
    reflog = os.path.join(path, "logs", "refs", "heads", branch)
    try:
        last_move = os.stat(reflog).st_mtime
    except FileNotFoundError:
        # A branch never moved here since the clone (made and flushed in one go).
        return None
    removed = tuple(_remove_torn_objects(repo, path, last_move - RECENT))
    reference = f"refs/heads/{branch}"
    head = _target(repo, reference)
    if head is not None and _whole(repo, head):
        return Recovery(removed) if removed else None
    for candidate in _reflog_targets(reflog):
        if _whole(repo, candidate):
            if head is None:
                # libgit2 reads a reference before replacing it, and refuses a torn one.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(path, reference))
            repo.references.create(reference, candidate, force=True)
            return Recovery(removed, str(head) if head else None, str(candidate))
    raise pygit2.GitError(f"no whole commit left on {branch} in {path}: clone it again")


def _remove_torn_objects(repo: pygit2.Repository, path: str, since: float) -> list[str]:
    """Loose objects written since that cannot be read whole: removed, by id."""
    removed = []
    with os.scandir(os.path.join(path, "objects")) as fan_outs:
        # A directory no object was written to since is not listed: the clone is never
        # repacked, and holds a few loose objects per UPDATE ever committed.
        recent = [
            fan_out
            for fan_out in fan_outs
            if len(fan_out.name) == 2
            and _HEX.issuperset(fan_out.name)
            and fan_out.stat().st_mtime >= since
        ]
    for fan_out in recent:
        with os.scandir(fan_out.path) as entries:
            for entry in entries:
                if len(entry.name) != 38 or entry.stat().st_mtime < since:
                    continue
                oid = fan_out.name + entry.name
                try:
                    # Inflated and hashed: an empty, short or garbled file fails.
                    repo.odb.read(oid)
                except (pygit2.GitError, ValueError):
                    os.unlink(entry.path)
                    removed.append(oid)
    return removed


def _target(repo: pygit2.Repository, reference: str) -> pygit2.Oid | None:
    """What reference names, None when its file is missing or torn."""
    try:
        found = repo.references.get(reference)
        return found.target if found is not None else None
    except (pygit2.GitError, ValueError):
        return None


def _whole(repo: pygit2.Repository, oid: pygit2.Oid) -> bool:
    """The commit, its root tree and every entry of that tree are in the repository.

    Presence is enough: torn recent objects were removed, and older ones were flushed.
    """
    odb = repo.odb
    try:
        if not odb.exists(oid):
            return False
        commit = repo[oid]
        if not isinstance(commit, pygit2.Commit) or not odb.exists(commit.tree_id):
            return False
        # A submodule's entry names a commit of another repository.
        return all(
            odb.exists(entry.id)
            for entry in commit.tree
            if entry.filemode != pygit2.GIT_FILEMODE_COMMIT
        )
    except (pygit2.GitError, ValueError):
        # Torn, and older than the objects read back: not whole either.
        return False


def _reflog_targets(reflog: str) -> Iterator[pygit2.Oid]:
    """The commits the branch named, newest first, from a reflog whose last lines may
    be torn (read here, not by libgit2, which refuses the whole file then)."""
    with open(reflog, "rb") as log:
        lines = log.read().splitlines()
    seen: set[bytes] = set()
    for line in reversed(lines):
        match = _REFLOG_LINE.match(line)
        if match is None:
            continue
        # The new value, then the old one (the first line's old value is all zeros).
        for hex_id in (match.group(2), match.group(1)):
            if hex_id not in seen and hex_id.strip(b"0"):
                seen.add(hex_id)
                yield pygit2.Oid(hex=hex_id.decode())
