"""Coverage-guided fuzzing of respond() with atheris (libFuzzer), for a bounded run.

The first input byte picks the transport and the served configuration (see
gitdns/test/test_fuzz.py: primary with an IXFR journal, secondary with an expired zone,
--axfr); the rest is the request. An exception out of respond() or an answer that
breaks check_reply is a crash: libFuzzer stops and writes the input to crash-<sha1>.
The valid-message corpus of test_fuzz seeds the run.

Usage: .venv/bin/python bench/fuzz_atheris.py [--runs 200000] [libFuzzer options...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["gitdns", "dns"]):
    from gitdns.respond import respond
    from gitdns.test.test_fuzz import PEER, build_corpus, check_reply, served_variants

SERVED = served_variants()


def one_input(data: bytes) -> None:
    if not data:
        return
    choice, wire = data[0], data[1:]
    tcp = bool(choice & 1)
    served = SERVED[(choice >> 1) % len(SERVED)]
    reply = respond(served, wire, tcp=tcp, now=int(time.time()), peer=PEER)
    check_reply(served, wire, tcp, reply)


def main() -> None:
    arguments = sys.argv[1:]
    runs = 200_000
    if "--runs" in arguments:
        at = arguments.index("--runs")
        runs = int(arguments[at + 1])
        del arguments[at : at + 2]
    with tempfile.TemporaryDirectory(prefix="gitdns-atheris-") as seeds:
        for index, wire in enumerate(build_corpus()):
            Path(seeds, f"seed-{index}").write_bytes(bytes([index % 6]) + wire)
        libfuzzer = [sys.argv[0], f"-runs={runs}", "-max_len=4096", *arguments, seeds]
        atheris.Setup(libfuzzer, one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
