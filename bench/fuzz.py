"""Fuzz the request path in-process: a fixed number of generated and mutated packets.

Every packet goes to respond() (UDP or TCP, one of four served configurations:
primary with an IXFR journal, secondary with an expired zone, --axfr, primary with
prerendered answers), and to the UDP handler (plain, and with response rate
limiting; the prerendered primary answers from its tables first); TCP packets also
go framed down a DNSStreamProtocol connection. The generators, mutators and properties are those of
gitdns/test/test_fuzz.py. Prints packets/s, answered/dropped, escaped exceptions and
malformed answers (each kind once, with the input in hex); exits 1 unless both are 0.

Usage: .venv/bin/python bench/fuzz.py [--count 1000000] [--seed 1] [--jobs 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import task  # noqa: E402
from twisted.logger import LogEvent, globalLogBeginner  # noqa: E402

from gitdns.respond import respond  # noqa: E402
from gitdns.test.test_fuzz import (  # noqa: E402
    PEER,
    BadReply,
    Packets,
    Server,
    build_corpus,
    check_reply,
    check_response_wire,
    framed,
    frames,
    served_variants,
    stepwise_cooperation,
)

# Signed corpus messages carry their signing time: rebuilt before the 300 s fudge ends.
CORPUS_LIFETIME = 120.0
PROGRESS_EVERY = 100_000


def where(error: BaseException) -> str:
    """The innermost frame of error's traceback in gitdns (else the innermost)."""
    frames_ = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames_ if "/gitdns/" in f.filename and "/test/" not in f.filename]
    frame = (ours or frames_)[-1] if frames_ else None
    if frame is None:
        return type(error).__name__
    return f"{type(error).__name__} at {Path(frame.filename).name}:{frame.lineno} ({frame.name})"


@dataclass
class Findings:
    packets: int = 0
    answered: int = 0
    dropped: int = 0
    udp_writes: int = 0
    tcp_frames: int = 0
    escaped: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    bug_logs: int = 0

    def found(self, table: Counter[str], signature: str, wire: bytes, detail: str) -> None:
        table[signature] += 1
        if signature not in self.examples:
            self.examples[signature] = f"input {wire.hex()}\n{detail}"

    def merge(self, other: Findings) -> None:
        for name in ("packets", "answered", "dropped", "udp_writes", "tcp_frames", "bug_logs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.escaped.update(other.escaped)
        self.malformed.update(other.malformed)
        for key, value in other.examples.items():
            self.examples.setdefault(key, value)


def run(count: int, seed: int, progress: bool) -> Findings:
    findings = Findings()

    def observe(event: LogEvent) -> None:
        if "log_failure" in event:
            findings.bug_logs += 1

    globalLogBeginner.beginLoggingTo([observe], redirectStandardIO=False)
    steps, cooperate = stepwise_cooperation()
    task.cooperate = cooperate  # type: ignore[assignment]
    variants = served_variants()
    servers = [Server(served, steps, rrl=rrl) for served in variants for rrl in (False, True)]
    stream_server = Server(variants[2], steps)
    connection, transport = stream_server.connect()
    rng = random.Random(seed)
    packets = Packets(rng, build_corpus())
    corpus_built = time.monotonic()
    start = time.monotonic()
    for index in range(count):
        if time.monotonic() - corpus_built > CORPUS_LIFETIME:
            packets.corpus = build_corpus()
            corpus_built = time.monotonic()
        kind, wire, tcp = packets.next()
        server = servers[index % len(servers)]
        served = server.served
        findings.packets += 1
        # The core.
        reply = None
        try:
            reply = respond(served, wire, tcp=tcp, now=int(time.time()), peer=PEER)
        except Exception as error:
            findings.found(
                findings.escaped, f"respond: {where(error)}", wire, traceback.format_exc()
            )
        else:
            findings.answered += reply is not None
            findings.dropped += reply is None
            try:
                check_reply(served, wire, tcp, reply)
            except BadReply as error:
                findings.found(
                    findings.malformed, f"respond: {error.kind}", wire, f"({kind}) {error}"
                )
            except Exception as error:
                findings.found(
                    findings.escaped,
                    f"checking: {where(error)}",
                    wire,
                    traceback.format_exc(),
                )
        # The UDP handler (its answer is checked unless it is respond's, checked above).
        server.clock.advance(0.001)
        try:
            written = server.datagram(wire, (f"192.0.2.{index % 7}", 5353))
        except Exception as error:
            findings.found(
                findings.escaped, f"datagramReceived: {where(error)}", wire, traceback.format_exc()
            )
            written = []
        for datagram in written:
            findings.udp_writes += 1
            if not tcp and reply is not None and datagram == reply.wire:
                continue
            try:
                check_response_wire(wire, datagram, tcp=False)
            except BadReply as error:
                rrl = "rate-limited " if server.limiter else ""
                findings.found(
                    findings.malformed,
                    f"{rrl}UDP handler: {error.kind}",
                    wire,
                    f"({kind}) {error}",
                )
        for failed, error in server.core_exceptions:
            findings.found(
                findings.escaped, f"core via dispatcher: {where(error)}", failed, repr(error)
            )
        server.core_exceptions.clear()
        # The TCP handler, on one long-lived connection (renewed now and then).
        if tcp:
            try:
                connection.dataReceived(framed(wire[:65535]))
                stream_server.run_transfers()
            except Exception as error:
                findings.found(
                    findings.escaped, f"dataReceived: {where(error)}", wire, traceback.format_exc()
                )
            try:
                for frame in frames(transport.value()):
                    findings.tcp_frames += 1
                    check_response_wire(wire, frame, tcp=True, transfer=True)
            except BadReply as error:
                findings.found(
                    findings.malformed, f"TCP handler: {error.kind}", wire, f"({kind}) {error}"
                )
            transport.clear()
            for failed, error in stream_server.core_exceptions:
                findings.found(
                    findings.escaped, f"core via dispatcher: {where(error)}", failed, repr(error)
                )
            stream_server.core_exceptions.clear()
            if index % 1000 == 0 or transport.disconnecting:
                connection.connectionLost(None)
                connection, transport = stream_server.connect()
        if progress and (index + 1) % PROGRESS_EVERY == 0:
            rate = (index + 1) / (time.monotonic() - start)
            print(
                f"  {index + 1} packets, {rate:.0f}/s, escaped {sum(findings.escaped.values())}, "
                f"malformed {sum(findings.malformed.values())}",
                file=sys.stderr,
                flush=True,
            )
    connection.connectionLost(None)
    return findings


def _job(arguments: tuple[int, int, bool]) -> Findings:
    return run(*arguments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="packets (default 1000000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="processes sharing the count")
    args = parser.parse_args()
    start = time.monotonic()
    if args.jobs <= 1:
        findings = run(args.count, args.seed, True)
    else:
        shares = [args.count // args.jobs + (i < args.count % args.jobs) for i in range(args.jobs)]
        with multiprocessing.Pool(args.jobs) as pool:
            parts = pool.map(
                _job, [(share, args.seed + i, i == 0) for i, share in enumerate(shares)]
            )
        findings = Findings()
        for part in parts:
            findings.merge(part)
    elapsed = time.monotonic() - start
    escaped = sum(findings.escaped.values())
    malformed = sum(findings.malformed.values())
    print(
        f"{findings.packets} packets in {elapsed:.1f} s "
        f"({findings.packets / elapsed:.0f} packets/s, {args.jobs} process(es), seed {args.seed})"
    )
    print(f"respond(): {findings.answered} answered, {findings.dropped} dropped")
    print(f"handlers: {findings.udp_writes} UDP datagrams, {findings.tcp_frames} TCP frames sent")
    print(
        f"escaped exceptions: {escaped}   malformed answers: {malformed}   "
        f"logged failures: {findings.bug_logs}"
    )
    for table in (findings.escaped, findings.malformed):
        for signature, number in table.most_common():
            print(f"\n== {number} x {signature}\n{findings.examples[signature]}")
    return 0 if escaped == malformed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
