"""Response rate limiting in the style of BIND and NSD RRL (pure: the time is passed in).

A spoofed flood turns an authoritative server into an amplifier aimed at the victim
whose address was forged. RRL bounds the identical responses one client network gets:
responses are accounted per (client /24 or /56, kind of response, query name), each
account earns `rate` responses a second (at most one second's worth banked), and past
that responses are dropped, every `slip`-th one sent instead as an empty truncated
answer so that a real client behind the forged address can retry over TCP.
TCP and TSIG-signed requests are never limited (the caller does not ask).
"""

from __future__ import annotations

import enum
import socket

NOERROR, NXDOMAIN = 0, 3
# Accounts idle this long are forgotten when the table is swept.
IDLE = 10.0


class Verdict(enum.Enum):
    SEND = "send"
    DROP = "drop"
    SLIP = "slip"  # send a truncated answer instead


def client_network(address: str) -> bytes:
    """The client's /24 (IPv4) or /56 (IPv6): one account for a network, as BIND does."""
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address)[:7]
    return socket.inet_pton(socket.AF_INET, address)[:3]


def question_end(request: bytes) -> int:
    """Offset just past the question's type and class (the query name uncompressed)."""
    index = 12
    while index < len(request) and request[index]:
        index += request[index] + 1
    return index + 5


def response_kind(request: bytes, response: bytes) -> tuple[str, bytes]:
    """What a response is for accounting: its kind and the name it is about.

    NXDOMAIN and errors count per network whatever the name, so that floods of
    random names share one account.
    """
    rcode = response[3] & 0x0F
    if rcode == NXDOMAIN:
        return "nxdomain", b""
    if rcode != NOERROR:
        return "error", b""
    name = request[12 : question_end(request) - 4].lower()
    if response[6] or response[7]:
        return "answer", name
    if response[2] & 0x04:
        return "nodata", name
    return "referral", name


def truncated(request: bytes, response: bytes) -> bytes:
    """response cut to its header and question, with TC set: "ask again over TCP".

    Only a response with exactly one question keeps it; otherwise the header alone.
    The question is cut out of our response, where it is never compressed.
    """
    flags = bytes([response[2] | 0x02, response[3]])
    if response[4:6] == b"\x00\x01":
        return response[:2] + flags + b"\x00\x01" + bytes(6) + response[12 : question_end(response)]
    return response[:2] + flags + bytes(8)


class RateLimiter:
    def __init__(self, rate: float, slip: int = 2, max_accounts: int = 200_000) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        if slip < 0:
            raise ValueError("slip must be 0 (never) or more")
        self.rate = rate
        self.slip = slip
        self.max_accounts = max_accounts
        # account -> [balance, time of last response, responses limited]
        self._accounts: dict[tuple[bytes, str, bytes], list[float]] = {}
        self.limited = 0

    def decide(self, client: str, request: bytes, response: bytes, now: float) -> Verdict:
        kind, name = response_kind(request, response)
        key = (client_network(client), kind, name)
        account = self._accounts.get(key)
        if account is None:
            if len(self._accounts) >= self.max_accounts:
                self._sweep(now)
            account = self._accounts[key] = [self.rate, now, 0]
        balance = min(self.rate, account[0] + (now - account[1]) * self.rate)
        account[1] = now
        if balance >= 1:
            account[0] = balance - 1
            return Verdict.SEND
        account[0] = balance
        account[2] += 1
        self.limited += 1
        if self.slip and account[2] % self.slip == 0:
            return Verdict.SLIP
        return Verdict.DROP

    def _sweep(self, now: float) -> None:
        idle = [key for key, account in self._accounts.items() if now - account[1] > IDLE]
        for key in idle:
            del self._accounts[key]
        if len(self._accounts) >= self.max_accounts:
            # Still full of busy accounts: start over rather than grow without bound.
            self._accounts.clear()
