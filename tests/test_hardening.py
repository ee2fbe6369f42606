"""A running primary under abuse: response rate limiting, crowds of idle TCP connections."""

from __future__ import annotations

import contextlib
import resource
import socket
import time

import dns.message
import dns.query
import dns.rcode

from tests.peers import MIRAGE


def flood(source: str, server, count: int, seconds: float) -> int:
    """Send count queries from source spread over seconds; return how many were answered."""
    query = dns.message.make_query("www.mirage.", "A").to_wire()
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.setblocking(False)
        interval = seconds / count
        deadline = time.monotonic() + seconds + 1.0
        for sent in range(count):
            sock.sendto(query, (server.host, server.port))
            pause_until = time.monotonic() + interval
            while time.monotonic() < pause_until or (
                sent == count - 1 and time.monotonic() < deadline
            ):
                try:
                    sock.recv(4096)
                    answered += 1
                except BlockingIOError:
                    time.sleep(interval / 4 if sent < count - 1 else 0.01)
    return answered


def test_rate_limited_flood_leaves_others_alone(gitdns) -> None:
    server = gitdns({"mirage": MIRAGE}, args=["--rrl-rate", "20", "--rrl-slip", "0"])
    answered = flood("127.0.1.2", server, count=400, seconds=2.0)
    # 20/s over ~2 s plus a one-second bank: far below the 400 asked for.
    assert answered <= 80, answered
    assert answered >= 20, answered
    other = flood("127.0.2.3", server, count=20, seconds=1.0)
    assert other == 20


def test_idle_tcp_crowd_does_not_stop_service(gitdns) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    server = gitdns({"mirage": MIRAGE})
    crowd = []
    try:
        for _ in range(1000):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect((server.host, server.port))
            crowd.append(sock)
        time.sleep(0.5)
        query = dns.message.make_query("www.mirage.", "A")
        udp = dns.query.udp(query, server.host, port=server.port, timeout=3)
        tcp = dns.query.tcp(query, server.host, port=server.port, timeout=3)
        assert udp.rcode() == tcp.rcode() == dns.rcode.NOERROR
        assert tcp.answer[0][0].address == "1.1.1.1"
    finally:
        for sock in crowd:
            sock.close()


def test_metrics_move(gitdns) -> None:
    import urllib.request

    from tests.peers import dig, free_port

    port = free_port()
    server = gitdns({"mirage": MIRAGE}, args=["--metrics", f"127.0.0.1:{port}"])

    def scrape() -> dict[str, float]:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    before = scrape()
    assert before['gitdns_zone_serial{zone="mirage."}'] == 1
    for _ in range(3):
        dig("+nocookie", "www.mirage", port=server.port)
    dig("+tcp", "nope.mirage", port=server.port)
    after = scrape()
    udp_ok = 'gitdns_responses_total{opcode="QUERY",rcode="NOERROR",transport="udp"}'
    assert after[udp_ok] - before.get(udp_ok, 0) == 3
    assert after['gitdns_responses_total{opcode="QUERY",rcode="NXDOMAIN",transport="tcp"}'] == 1
    assert after['gitdns_cache_hits_total{transport="udp"}'] >= 2
