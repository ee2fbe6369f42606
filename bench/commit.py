"""What one group commit of UPDATEs costs in the git worker thread, in-process.

Makes a repository with one zone of RECORDS records (as bench/updates.sh does), then
commits ROUNDS batches of BATCH UPDATEs through GitRepository.commit_updates_blocking
(apply, edit the file, write and sync the commit, snapshot), and pushes them once.
Prints wall-clock and CPU time per commit: CPU time is what the worker thread spends,
whatever else the machine is doing; wall-clock adds the disk flushes.

Usage: .venv/bin/python bench/commit.py [--records 1000] [--batch 4] [--rounds 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.update  # noqa: E402
from updates import KEY_NAME, ORIGIN, ZONE, make_zone  # noqa: E402

from gitdns.commits import UpdateItem  # noqa: E402
from gitdns.gitrepo import GitRepository, Remote  # noqa: E402
from gitdns.zones import load_zoneset  # noqa: E402
from tests.peers import make_repo  # noqa: E402


def batches(count: int, size: int) -> list[list[UpdateItem]]:
    """UPDATEs as the primary hands them to the worker: parsed, each adding a name."""
    origin, keyname = dns.name.from_text(ORIGIN), dns.name.from_text(KEY_NAME)
    made = []
    for index in range(count * size):
        update = dns.update.UpdateMessage(ORIGIN)
        update.add(f"n{index}", 300, "A", "192.0.2.7")
        wire = update.to_wire()
        item = UpdateItem(origin, ZONE, wire, keyname, "127.0.0.1", dns.message.from_wire(wire))
        made.append(item)
    return [made[start : start + size] for start in range(0, len(made), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitdns-bench-commit-") as work:
        base = Path(work)
        make_repo(base / "source", {ZONE: make_zone(args.records)})
        remote = base / "remote.git"
        clone = ["git", "clone", "-q", "--bare", str(base / "source"), str(remote)]
        subprocess.run(clone, check=True)
        repo = GitRepository(str(base / "clone"), Remote.parse(str(remote)))
        repo.clone_blocking()
        loaded = load_zoneset(repo.snapshot_blocking().files).zoneset
        known = {zone.filename: zone for zone in loaded.sources.values()}
        work_batches = batches(args.rounds, args.batch)
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in work_batches:
            applied, _ = repo.commit_updates_blocking(batch, known, int(time.time()))
            known = {**known, **applied.zones}
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{args.records} records, {args.rounds} commits of {args.batch} UPDATEs: "
            f"{wall / args.rounds * 1000:.1f} ms wall, {cpu / args.rounds * 1000:.1f} ms CPU "
            "per commit"
        )
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = repo.push_blocking()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"push of {args.rounds} commits ({outcome.name}): {wall:.2f} s wall, {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
