"""Counters the server keeps as plain numbers, exported in Prometheus text on --metrics.

Counting is an integer increment on the hot path; the Prometheus objects are built only
when /metrics is scraped (a custom collector), so serving pays nothing for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dns.opcode
import dns.rcode
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.twisted import MetricsResource
from twisted.application import internet, service
from twisted.web.resource import Resource
from twisted.web.server import Site

from gitdns.zones import ZoneSet


@dataclass
class Metrics:
    # (transport, opcode, rcode) of every response sent.
    responses: Counter[tuple[str, int, int]] = field(default_factory=Counter)
    cache_hits: Counter[str] = field(default_factory=Counter)
    # Answers sent from prerendered tables (gitdns.prerendered), by transport.
    prerendered: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    transfers_out: Counter[str] = field(default_factory=Counter)
    transfers_in: Counter[str] = field(default_factory=Counter)
    transfer_failures: int = 0
    notifies_sent: int = 0
    notifies_acked: int = 0
    zone_load_errors: int = 0
    certificates_issued: int = 0
    certificate_failures: int = 0
    # Names whose certificate is wanted now (being ordered or waiting to retry).
    certificates_due: Callable[[], int] = lambda: 0
    # git operation -> [count, seconds, failures]
    git: dict[str, list[float]] = field(default_factory=dict)
    # Filled in by their owners: updates, zones.
    updates: Callable[[], dict[str, int]] = dict
    zones: Callable[[], ZoneSet] = ZoneSet

    def response(self, transport: str, request: bytes, response: bytes) -> None:
        self.responses[transport, (request[2] >> 3) & 0x0F, response[3] & 0x0F] += 1

    def git_operation(self, name: str, seconds: float, failed: bool) -> None:
        count = self.git.setdefault(name, [0, 0.0, 0])
        count[0] += 1
        count[1] += seconds
        count[2] += failed


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        m = self.metrics
        responses = CounterMetricFamily(
            "gitdns_responses", "Responses sent", labels=["transport", "opcode", "rcode"]
        )
        for (transport, opcode, rcode), count in sorted(m.responses.items()):
            labels = [transport, dns.opcode.to_text(opcode), dns.rcode.to_text(rcode)]
            responses.add_metric(labels, count)
        yield responses
        hits = CounterMetricFamily(
            "gitdns_cache_hits", "Answers sent from the response cache", labels=["transport"]
        )
        for transport, count in sorted(m.cache_hits.items()):
            hits.add_metric([transport], count)
        yield hits
        prerendered = CounterMetricFamily(
            "gitdns_prerendered",
            "Answers sent from prerendered tables",
            labels=["transport"],
        )
        for transport, count in sorted(m.prerendered.items()):
            prerendered.add_metric([transport], count)
        yield prerendered
        yield CounterMetricFamily(
            "gitdns_rate_limited", "Responses dropped or slipped by RRL", value=m.rate_limited
        )
        for direction, table in (("out", m.transfers_out), ("in", m.transfers_in)):
            transfers = CounterMetricFamily(
                f"gitdns_transfers_{direction}", f"Zone transfers {direction}", labels=["kind"]
            )
            for kind, count in sorted(table.items()):
                transfers.add_metric([kind], count)
            yield transfers
        yield CounterMetricFamily(
            "gitdns_transfer_failures", "Incoming transfers that failed", value=m.transfer_failures
        )
        yield CounterMetricFamily("gitdns_notifies_sent", "NOTIFYs sent", value=m.notifies_sent)
        yield CounterMetricFamily(
            "gitdns_notifies_acked", "NOTIFYs answered", value=m.notifies_acked
        )
        yield CounterMetricFamily(
            "gitdns_zone_load_errors", "Zone files that failed to load", value=m.zone_load_errors
        )
        yield CounterMetricFamily(
            "gitdns_certificates_issued", "Certificates issued", value=m.certificates_issued
        )
        yield CounterMetricFamily(
            "gitdns_certificate_failures",
            "Failed certificate orders",
            value=m.certificate_failures,
        )
        yield GaugeMetricFamily(
            "gitdns_certificates_due",
            "Names waiting for a (renewed) certificate",
            value=m.certificates_due(),
        )
        operations = CounterMetricFamily(
            "gitdns_git_operations", "git operations", labels=["operation"]
        )
        seconds = CounterMetricFamily(
            "gitdns_git_seconds", "Time spent in git operations", labels=["operation"]
        )
        failures = CounterMetricFamily(
            "gitdns_git_failures", "git operations that failed", labels=["operation"]
        )
        for name, (count, spent, failed) in sorted(m.git.items()):
            operations.add_metric([name], count)
            seconds.add_metric([name], spent)
            failures.add_metric([name], failed)
        yield from (operations, seconds, failures)
        for name, value in sorted(m.updates().items()):
            family = GaugeMetricFamily if name == "pending_push" else CounterMetricFamily
            yield family(f"gitdns_updates_{name}", f"UPDATEs {name.replace('_', ' ')}", value)
        serials = GaugeMetricFamily("gitdns_zone_serial", "Serial served", labels=["zone"])
        for origin, zone in sorted(m.zones().zones.items()):
            serials.add_metric([str(origin)], zone.serial)
        yield serials


class _QuietSite(Site):
    """No access log line per scrape: an operator's log is for events."""

    noisy = False

    def log(self, request: object) -> None:
        pass


def metrics_service(metrics: Metrics, host: str, port: int) -> service.Service:
    """An HTTP listener serving /metrics in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(metrics))
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=registry))
    return internet.TCPServer(port, _QuietSite(root), interface=host)
