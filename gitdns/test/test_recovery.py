"""A clone left half-written by a power cut: the branch goes back to a whole commit."""

from __future__ import annotations

import os
import subprocess

import dns.message
import dns.name
import dns.update
import pygit2
from twisted.trial.unittest import SynchronousTestCase

from gitdns.commits import UpdateItem
from gitdns.gitrepo import GitRepository, Remote
from gitdns.recovery import recover
from gitdns.zones import LoadedZone, load_zoneset

ORIGIN = "example."
ZONE = "@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
KEY = dns.name.from_text("update.example.")


def update(name: str) -> UpdateItem:
    message = dns.update.UpdateMessage(ORIGIN)
    message.add(name, 300, "A", "192.0.2.7")
    wire = message.to_wire()
    origin = dns.name.from_text(ORIGIN)
    return UpdateItem(origin, "example", wire, KEY, "127.0.0.1", dns.message.from_wire(wire))


def tear(path: str, oid: pygit2.Oid) -> None:
    """What a power cut can leave of a loose object written but not flushed: nothing."""
    hex_id = str(oid)
    with open(os.path.join(path, "objects", hex_id[:2], hex_id[2:]), "wb"):
        pass


class RecoveryTests(SynchronousTestCase):
    def setUp(self) -> None:
        base = os.path.abspath(self.mktemp())
        source = os.path.join(base, "source")
        os.makedirs(source)
        with open(os.path.join(source, "example"), "w") as zone:
            zone.write(ZONE)
        git = ["git", "-C", source, "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "zone"], check=True)
        self.source = source
        self.path = os.path.join(base, "clone")
        cloned = GitRepository(self.path, Remote.parse(source))
        cloned.clone_blocking()
        # As the primary starts: the clone made, then recovery (which keeps a reflog).
        self.assertIsNone(cloned.recover_blocking())
        self.restart()

    def restart(self) -> None:
        """A new process on the clone: no state kept from the last one."""
        self.repo = GitRepository(self.path, Remote.parse(self.source))
        zoneset = load_zoneset(self.repo.snapshot_blocking().files).zoneset
        self.known: dict[str, LoadedZone] = {z.filename: z for z in zoneset.sources.values()}

    def commit(self, name: str) -> pygit2.Commit:
        applied, _ = self.repo.commit_updates_blocking([update(name)], self.known, 1_700_000_000)
        self.known = {**self.known, **applied.zones}
        return pygit2.Repository(self.path)[applied.commit]

    def head(self) -> pygit2.Oid:
        return pygit2.Repository(self.path).references["refs/heads/main"].target

    def test_whole_clone_is_left_alone(self) -> None:
        self.commit("a")
        head = self.head()
        self.assertIsNone(recover(self.path, "main"))
        self.assertEqual(self.head(), head)

    def test_torn_commit_is_undone_and_can_be_made_again(self) -> None:
        kept = self.commit("a")
        torn = self.commit("b")
        blob = torn.tree["example"].id
        tear(self.path, torn.id)
        tear(self.path, blob)
        recovered = GitRepository(self.path, Remote.parse(self.source)).recover_blocking()
        assert recovered is not None
        self.assertEqual(set(recovered.removed), {str(torn.id), str(blob)})
        self.assertEqual((recovered.moved_from, recovered.moved_to), (str(torn.id), str(kept.id)))
        self.assertEqual(self.head(), kept.id)
        # The client sends "b" again, to the restarted primary: the same zone text, the
        # same blob id, which libgit2 would not write again had the empty file stayed.
        self.restart()
        again = self.commit("b")
        self.assertEqual(again.tree["example"].id, blob)
        text = pygit2.Repository(self.path)[blob].data.decode()
        self.assertIn("b\t300\tIN\tA\t192.0.2.7", text.replace(" ", "\t"))

    def test_torn_tree_is_undone(self) -> None:
        kept = self.commit("a")
        torn = self.commit("b")
        tear(self.path, torn.tree_id)
        recovered = recover(self.path, "main")
        assert recovered is not None
        self.assertEqual(recovered.moved_to, str(kept.id))

    def test_torn_branch_and_reflog_tail(self) -> None:
        kept = self.commit("a")
        torn = self.commit("b")
        tear(self.path, torn.id)
        with open(os.path.join(self.path, "refs", "heads", "main"), "wb"):
            pass
        with open(os.path.join(self.path, "logs", "refs", "heads", "main"), "ab") as reflog:
            reflog.write(b"\x00" * 30)
        recovered = recover(self.path, "main")
        assert recovered is not None
        self.assertEqual((recovered.moved_from, recovered.moved_to), (None, str(kept.id)))
        self.assertEqual(self.head(), kept.id)

    def test_old_objects_are_not_read_back(self) -> None:
        self.commit("a")
        old = self.commit("b")
        # Flushed long before the last move: not read, even if it were torn.
        past = os.stat(os.path.join(self.path, "logs", "refs", "heads", "main")).st_mtime - 3600
        hex_id = str(old.tree_id)
        os.utime(os.path.join(self.path, "objects", hex_id[:2], hex_id[2:]), (past, past))
        self.assertIsNone(recover(self.path, "main"))

    def test_directories_not_written_lately_are_not_listed(self) -> None:
        first = self.commit("a")
        self.commit("b")
        past = os.stat(os.path.join(self.path, "logs", "refs", "heads", "main")).st_mtime - 3600
        # The first commit's zone file, which the head no longer uses, torn in a
        # directory nothing was written to lately: not even looked at.
        hex_id = str(first.tree["example"].id)
        tear(self.path, first.tree["example"].id)
        with os.scandir(os.path.join(self.path, "objects")) as fan_outs:
            for fan_out in fan_outs:
                os.utime(fan_out.path, (past, past))
        self.assertIsNone(recover(self.path, "main"))
        self.assertTrue(os.path.exists(os.path.join(self.path, "objects", hex_id[:2], hex_id[2:])))
