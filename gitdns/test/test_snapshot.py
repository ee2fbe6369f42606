"""Snapshots of the clone: the one made from the last one's differences is the full one."""

from __future__ import annotations

import os

import pygit2
from twisted.trial.unittest import SynchronousTestCase

from gitdns.gitrepo import GitRepository, Remote

ZONE = b"@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
SIGNATURE = pygit2.Signature("tests", "tests@gitdns.invalid", 0, 0)


class SnapshotTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        self.repo = pygit2.init_repository(self.path, bare=True, initial_head="main")
        self.parent: list[pygit2.Oid] = []

    def commit(self, files: dict[str, bytes | None], modes: dict[str, int] | None = None) -> None:
        """Write (None: delete) root files, and one file in a subdirectory, as a commit."""
        tree = self.repo[self.parent[0]].peel(pygit2.Commit).tree if self.parent else None
        builder = self.repo.TreeBuilder(tree) if tree is not None else self.repo.TreeBuilder()
        for name, data in files.items():
            if data is None:
                builder.remove(name)
                continue
            mode = (modes or {}).get(name, pygit2.GIT_FILEMODE_BLOB)
            builder.insert(name, self.repo.create_blob(data), mode)
        oid = self.repo.create_commit(
            "refs/heads/main", SIGNATURE, SIGNATURE, "change", builder.write(), self.parent
        )
        self.parent = [oid]

    def snapshots(self, loaded: set[str]) -> tuple[dict, dict]:
        """(the snapshot made from the last one, a fresh repository's snapshot)."""
        fresh = GitRepository(self.path, Remote.parse(self.path))
        made = {f.name: f for f in self.kept.snapshot_blocking(loaded=loaded).files}
        full = {f.name: f for f in fresh.snapshot_blocking(loaded=loaded).files}
        return made, full

    def test_differences_only(self) -> None:
        self.kept = GitRepository(self.path, Remote.parse(self.path))
        self.commit({"a.example": ZONE, "b.example": ZONE + b"; b\n", "_keys": b"k"})
        steps: list[tuple[dict[str, bytes | None], dict[str, int] | None]] = [
            ({"a.example": ZONE + b"; changed\n"}, None),
            ({"b.example": None, "c.example": ZONE + b"; c\n"}, None),
            ({"_keys": b"k2"}, None),
            ({"link.example": b"a.example"}, {"link.example": pygit2.GIT_FILEMODE_LINK}),
            ({"a.example": ZONE}, {"a.example": pygit2.GIT_FILEMODE_BLOB_EXECUTABLE}),
            ({"c.example": None, "link.example": None}, None),
        ]
        made, full = self.snapshots(set())
        self.assertEqual(made, full)
        for files, modes in steps:
            # What the last snapshot read is loaded now: its data need not be read again.
            loaded = {f.blob_id for f in made.values() if not f.key}
            self.commit(files, modes)
            made, full = self.snapshots(loaded)
            self.assertEqual(made, full, files)
            self.assertNotIn("link.example", made)
        # A zone not loaded any more (it failed, say) is read again although unchanged.
        made, full = self.snapshots(set())
        self.assertEqual(made, full)
        self.assertTrue(made["a.example"].data)
