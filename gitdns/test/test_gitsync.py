"""Group commit: how UPDATEs are gathered into commits (the worker thread played by hand)."""

from __future__ import annotations

from collections.abc import Callable

import dns.name
import dns.rcode
import dns.tsig
import dns.update
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from gitdns.commits import Applied, UpdateItem
from gitdns.gitsync import GATHER_WAIT, GitSync
from gitdns.respond import Served, UpdateReceived, respond
from gitdns.test.zonedata import EXAMPLE
from gitdns.zones import LoadedZone, ZoneSet, parse_zone

ORIGIN = dns.name.from_text("example.")
KEY = dns.tsig.Key("k._update.example.", "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")


class HandRunWorker:
    """Stands for GitRepository: operations wait until the test finishes them."""

    def __init__(self) -> None:
        self.running: list[tuple[list[UpdateItem], defer.Deferred]] = []

    def run(self, function: Callable, items: list[UpdateItem], now: int) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.running.append((items, d))
        return d

    def finish(self) -> int:
        """Finish the oldest operation as a commit that changed nothing; its batch size."""
        items, d = self.running.pop(0)
        d.callback((Applied(None, [dns.rcode.NOERROR] * len(items)), None))
        return len(items)


def update_event(served: Served, index: int) -> UpdateReceived:
    update = dns.update.UpdateMessage(ORIGIN, keyring={KEY.name: KEY}, keyname=KEY.name)
    update.add(f"n{index}", 300, "A", "192.0.2.1")
    reply = respond(served, update.to_wire(), tcp=True, now=0)
    assert reply is not None and isinstance(reply.event, UpdateReceived)
    return reply.event


class GatherTests(SynchronousTestCase):
    def setUp(self) -> None:
        zone = parse_zone(ORIGIN, EXAMPLE, "example")
        zones = ZoneSet({ORIGIN: zone}, {ORIGIN: LoadedZone("blob", zone, "example")})
        self.served = Served(zones=zones, keyring={KEY.name: KEY}, may=lambda *_: True)
        self.clock = task.Clock()
        self.worker = HandRunWorker()
        self.sync = GitSync(self.worker, self.clock, lambda loaded: None)  # type: ignore[arg-type]
        self.sync.served = zones
        self.count = 0

    def submit(self) -> defer.Deferred[bytes]:
        self.count += 1
        return self.sync.submit(update_event(self.served, self.count), "127.0.0.1")

    def test_lone_update_is_committed_at_once(self) -> None:
        answer = self.submit()
        self.assertEqual(self.worker.finish(), 1)
        self.assertTrue(answer.called)

    def test_clients_answered_together_are_committed_together(self) -> None:
        self.submit()  # committed at once
        self.submit()
        self.submit()  # these two queue behind it
        self.assertEqual(self.worker.finish(), 1)
        # Three were under way: the two queued wait for the client just answered.
        self.assertEqual(self.worker.running, [])
        self.submit()
        self.assertEqual(self.worker.finish(), 3)
        # From now on all three go into one commit, whichever comes back first.
        self.submit()
        self.submit()
        self.assertEqual(self.worker.running, [])
        self.submit()
        self.assertEqual(self.worker.finish(), 3)

    def test_wait_is_bounded(self) -> None:
        self.submit()
        self.submit()
        self.assertEqual(self.worker.finish(), 1)
        # Two were under way; the client answered does not come back.
        self.assertEqual(self.worker.running, [])
        self.clock.advance(GATHER_WAIT)
        self.assertEqual(self.worker.finish(), 1)
        # Now one is under way: the next is committed at once.
        self.submit()
        self.assertEqual(self.worker.finish(), 1)
