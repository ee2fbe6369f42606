"""NOTIFY fan-out (RFC 1996): whom to tell about a zone, and telling them until they answer.

`notify_targets` is pure (SPEC.md "Primary"); `Notifier` runs the retransmissions on
the reactor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gitdns.keys import Key
from gitdns.metrics import Metrics
from gitdns.zones import Zone

log = Logger()

# Seconds to wait before each retransmission (SPEC.md); then we give up.
RETRANSMIT = (1, 1, 1, 4, 13, 20, 20, 120, 420, 900)
ATTEMPT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Target:
    """A secondary to notify: its address, and the key to sign with (None: unsigned)."""

    address: str
    key: Key | None = None


def notify_targets(
    zone: Zone,
    keys: Iterable[Key],
    registered: Mapping[str, Key] | None = None,
) -> list[Target]:
    """Whom to NOTIFY about zone, one target per address (SPEC.md "Primary").

    - addresses of the zone's NS names found in its own data, but not the SOA
      MNAME's (that is us);
    - the secondary address of every `_transfer`/`_update` key of the zone or above;
    - addresses that registered with a signed SOA query (address -> key).
    A keyed target is signed with its key, which wins over an unsigned one.
    """
    targets: dict[str, Key | None] = {}
    mname = zone.soa[0].mname
    apex = zone.nodes[zone.origin]
    for ns in apex[dns.rdatatype.NS]:
        if ns.target == mname:
            continue
        node = zone.nodes.get(ns.target, {})
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            for address in node.get(rdtype, ()):
                targets.setdefault(address.address, None)
    for key in keys:
        role = key.role
        if role is not None and role.secondary is not None and zone.origin.is_subdomain(role.zone):
            targets[str(role.secondary)] = key
    for address, key in (registered or {}).items():
        targets[address] = key
    return [Target(address, key) for address, key in sorted(targets.items())]


def notify_message(zone: Zone, key: Key | None) -> dns.message.Message:
    """A NOTIFY for zone carrying its SOA as a hint (RFC 1996 3.7), signed with key."""
    message = dns.message.make_query(zone.origin, dns.rdatatype.SOA)
    message.set_opcode(dns.opcode.NOTIFY)
    message.flags = dns.flags.AA | dns.opcode.to_flags(dns.opcode.NOTIFY)
    message.answer.append(zone.soa)
    if key is not None:
        tsig = key.tsig_key()
        message.use_tsig({tsig.name: tsig}, tsig.name, algorithm=tsig.algorithm)
    return message


Send = Callable[[str, dns.message.Message], defer.Deferred[dns.message.Message]]


class Notifier:
    """Sends NOTIFYs and retransmits each until it is answered or the schedule ends.

    A newer NOTIFY for the same zone and address replaces one still being retried.
    """

    def __init__(
        self,
        clock: IReactorTime,
        send: Send,
        schedule: tuple[float, ...] = RETRANSMIT,
        metrics: Metrics | None = None,
    ):
        self.clock = clock
        self.send = send
        self.schedule = schedule
        self.metrics = metrics or Metrics()
        self._pending: dict[tuple[dns.name.Name, str], IDelayedCall] = {}
        # Bumped by every new NOTIFY for a slot: answers to older ones are ignored.
        self._generation: dict[tuple[dns.name.Name, str], int] = {}

    def notify(self, zone: Zone, targets: Iterable[Target]) -> None:
        for target in targets:
            slot = (zone.origin, target.address)
            call = self._pending.pop(slot, None)
            if call is not None and call.active():
                call.cancel()
            self._generation[slot] = self._generation.get(slot, 0) + 1
            self._attempt(zone, target, 0, self._generation[slot])

    def _attempt(self, zone: Zone, target: Target, attempt: int, generation: int) -> None:
        slot = (zone.origin, target.address)
        self._pending.pop(slot, None)
        self.metrics.notifies_sent += 1
        d = self.send(target.address, notify_message(zone, target.key))

        def answered(response: dns.message.Message) -> None:
            self.metrics.notifies_acked += 1
            rcode = response.rcode()
            level = log.info if rcode == dns.rcode.NOERROR else log.warn
            level(
                "NOTIFY {zone} serial {serial} to {peer} (key {key}): {rcode}",
                zone=str(zone.origin),
                serial=zone.serial,
                peer=target.address,
                key=str(target.key.name) if target.key else "none",
                rcode=dns.rcode.to_text(rcode),
            )

        def unanswered(failure: Failure) -> None:
            if self._generation.get(slot) != generation:
                return
            if attempt >= len(self.schedule):
                log.warn(
                    "NOTIFY {zone} serial {serial} to {peer}: no answer after {count} tries, "
                    "giving up ({reason})",
                    zone=str(zone.origin),
                    serial=zone.serial,
                    peer=target.address,
                    count=attempt + 1,
                    reason=failure.getErrorMessage(),
                )
                return
            self._pending[slot] = self.clock.callLater(
                self.schedule[attempt], self._attempt, zone, target, attempt + 1, generation
            )

        d.addCallbacks(answered, unanswered)

    def stop(self) -> None:
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
