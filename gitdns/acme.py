"""gitdns-acme: certificates for CSRs published in DNS, from an ACME CA by dns-01.

The shell around gitdns/certify.py (SPEC.md "Certificates through DNS"). A hidden
secondary (gitdns/secondary.py, answering NOTIFY only) keeps copies of the primary's
zones; after every change the planner says which names need a certificate, and for
each: ACME order -> challenge TXT by signed UPDATE -> wait until every authoritative
server serves it -> answer -> finalize -> UPDATE publishing the certificate and chain
-> UPDATE removing the TXT. The acme library blocks: its calls run in worker threads.
Failures back off per name.

Also the client side (`obtain_certificate`, used by `gitdns certify`): upload a CSR
with one UPDATE, then poll the TLSA RRset until a matching certificate appears.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import josepy as jose
import requests
from acme import challenges, errors, messages
from acme.client import ClientNetwork, ClientV2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.application import service
from twisted.internet import defer, task, threads
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from gitdns import certify
from gitdns.client import DNSClientError, bound_to_listen_address, query_tcp, query_tcp_then_udp
from gitdns.keys import Key, Operation
from gitdns.privileges import give_away_to_twistd_user
from gitdns.respond import Reply, Served, header_error
from gitdns.secondary import Secondary, SecondaryConfig
from gitdns.zones import LoadResult, Zone, ZoneSet

log = Logger()

LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
USER_AGENT = "gitdns-acme"

UPDATE_TIMEOUT = 30.0  # the primary answers an UPDATE after its git commit
QUERY_TIMEOUT = 3.0
HTTP_TIMEOUT = 15  # one ACME request (requests' timeout)
ORDER_TIMEOUT = 180.0  # validation and finalization of one order, polled
RETRY_LONGEST = 6 * 3600.0
# Zone keys register us only by the SOA queries of a refresh: ask this often, so a
# restarted primary learns again where to send its NOTIFYs.
REGISTER_INTERVAL = 300.0
# Look again this often while a zone copy is not confirmed by the primary since start
# (a copy from disk may be older than certificates published meanwhile).
UNCONFIRMED_RECHECK = 2.0
LONGEST_SLEEP = 86400.0
# A certificate we published is not ordered again while our copy still shows the
# RRset from before (its IXFR is on the way), for at most this long.
PUBLISHED_GRACE = 600.0
ARI_RETRY = 3600.0


class AcmeError(Exception):
    """One issuance step failed; the message says which and why."""


@dataclass(frozen=True)
class AcmeConfig:
    keys: list[Key]
    primary: tuple[str, int]
    directory: str = LETS_ENCRYPT_STAGING
    account_key: str | None = None  # default: <data_dir>/account.key
    email: str | None = None
    ca_file: str | None = None
    renew_days: float = 30.0
    data_dir: str = "gitdns-acme"
    # Where the primary's NOTIFYs reach us.
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("0.0.0.0", 53), ("::", 53)])
    # Port of the zone's name servers for the propagation check (test setups differ).
    ns_port: int = 53
    retry_delay: float = 60.0
    propagation_timeout: float = 120.0
    # --metrics HOST:PORT: Prometheus text on http://HOST:PORT/metrics.
    metrics: tuple[str, int] | None = None

    @property
    def account_key_path(self) -> str:
        return self.account_key or os.path.join(self.data_dir, "account.key")


# ---------------------------------------------------------------------------- account key


def load_or_create_account_key(path: str) -> jose.JWK:
    """The ACME account key at path; created (ECDSA P-256, mode 0600) when missing."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(path, data)
        log.info("Created ACME account key {path}", path=path)
    else:
        if os.stat(path).st_mode & 0o077:
            log.warn("ACME account key {path} is readable by others (chmod 600)", path=path)
    private = serialization.load_pem_private_key(data, password=None)
    if isinstance(private, rsa.RSAPrivateKey):
        return jose.JWKRSA(key=private)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return jose.JWKEC(key=private)
    raise ValueError(f"{path}: an ACME account key must be RSA or ECDSA")


def write_private(path: str, data: bytes) -> None:
    """Create path with mode 0600 (never replacing a file: a key is not overwritten)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _signing_algorithm(key: jose.JWK) -> jose.JWASignature:
    if isinstance(key, jose.JWKEC):
        size = key.key.curve.key_size
        return {256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[size]
    return jose.RS256


# ---------------------------------------------------------------------------- ACME, blocking


@dataclass
class _Challenge:
    domain: str  # the authorization's identifier (a wildcard's base)
    body: messages.ChallengeBody
    authorization: messages.AuthorizationResource
    validation: str  # the TXT value


@dataclass
class _Ordered:
    client: ClientV2
    order: messages.OrderResource
    pending: list[_Challenge]


class AcmeAccount:
    """The acme library's half: every method blocks and runs in a worker thread.

    Each order gets its own ClientV2 and HTTP session (requests sessions are not
    shared between threads); the directory and the account are looked up once and
    again after any failure (a CA that restarted may have forgotten the account).
    """

    def __init__(
        self,
        directory: str,
        key: jose.JWK,
        email: str | None,
        verify: bool | str,
        stopping: threading.Event,
    ) -> None:
        self.url = directory
        self.key = key
        self.alg = _signing_algorithm(key)
        self.email = email
        self.verify = verify
        self.stopping = stopping
        self._lock = threading.Lock()
        self._directory: messages.Directory | None = None
        self._account: messages.RegistrationResource | None = None

    def _network(self, account: messages.RegistrationResource | None) -> ClientNetwork:
        return ClientNetwork(
            self.key,
            account=account,
            alg=self.alg,
            verify_ssl=self.verify,
            user_agent=USER_AGENT,
            timeout=HTTP_TIMEOUT,
        )

    def client(self) -> ClientV2:
        """A client for our account, registering it first when needed."""
        with self._lock:
            if self._directory is None or self._account is None:
                net = self._network(None)
                directory = ClientV2.get_directory(self.url, net)
                registration = messages.NewRegistration.from_data(
                    email=self.email, terms_of_service_agreed=True
                )
                try:
                    account = ClientV2(directory, net).new_account(registration)
                    log.info("ACME account created at {url}", url=account.uri)
                except errors.ConflictError as known:
                    # The key is registered already: the CA told us where.
                    account = messages.RegistrationResource(
                        uri=known.location, body=messages.Registration()
                    )
                    log.info("ACME account {url}", url=account.uri)
                self._directory, self._account = directory, account
            return ClientV2(self._directory, self._network(self._account))

    def forget(self) -> None:
        with self._lock:
            self._directory = self._account = None

    def order(self, csr_pem: bytes) -> _Ordered:
        client = self.client()
        order = client.new_order(csr_pem)
        pending = []
        for authorization in order.authorizations:
            body = authorization.body
            if body.status == messages.STATUS_VALID:
                continue  # validated lately (the CA reuses authorizations)
            if body.status != messages.STATUS_PENDING:
                raise AcmeError(f"authorization for {body.identifier.value} is {body.status}")
            found = [c for c in body.challenges if isinstance(c.chall, challenges.DNS01)]
            if not found:
                raise AcmeError(f"the CA offers no dns-01 challenge for {body.identifier.value}")
            validation = found[0].chall.validation(self.key)
            pending.append(_Challenge(body.identifier.value, found[0], authorization, validation))
        return _Ordered(client, order, pending)

    def answer(self, ordered: _Ordered) -> None:
        for challenge in ordered.pending:
            response = challenge.body.chall.response(self.key)
            ordered.client.answer_challenge(challenge.body, response)

    def validate(self, ordered: _Ordered, deadline: float) -> None:
        """Poll each authorization until valid (not the library's 1 s sleeps: most CAs
        validate within a fraction of that)."""
        for challenge in ordered.pending:
            delay = 0.1
            authorization = challenge.authorization
            while True:
                authorization, _ = ordered.client.poll(authorization)
                status = authorization.body.status
                if status == messages.STATUS_VALID:
                    break
                if status not in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
                    reasons = [str(c.error) for c in authorization.body.challenges if c.error]
                    raise AcmeError(
                        f"validation of {challenge.domain} {status}: "
                        + ("; ".join(reasons) or "no reason given")
                    )
                if time.time() > deadline:
                    raise AcmeError(f"validation of {challenge.domain} still {status}")
                if self.stopping.wait(delay):
                    raise AcmeError("stopping")
                delay = min(delay * 2, 2.0)

    def finalize(self, ordered: _Ordered, deadline: float) -> str:
        when = datetime.datetime.fromtimestamp(deadline)  # naive local, as acme compares
        order = ordered.client.finalize_order(ordered.order, when)
        return order.fullchain_pem

    def renewal_time(self, certificate_pem: bytes) -> tuple[float | None, float]:
        """ACME Renewal Information (RFC 9773): when to renew, when to ask again."""
        when, again = self.client().renewal_time(certificate_pem)
        return (when.timestamp() if when is not None else None), again.timestamp()


# ---------------------------------------------------------------------------- the service


class _HiddenSecondary(Secondary):
    """A secondary that serves nobody: it only takes NOTIFYs (others get REFUSED)."""

    def handle(self, wire: bytes, tcp: bool, peer: tuple[str, int]) -> Reply | None:
        if len(wire) >= 12 and not wire[2] & 0x80 and (wire[2] >> 3) & 0xF != dns.opcode.NOTIFY:
            return Reply(header_error(wire, dns.rcode.REFUSED))
        return super().handle(wire, tcp, peer)


@dataclass
class _Backoff:
    csr: bytes
    failures: int
    at: float


@dataclass(frozen=True)
class _Issued:
    """A certificate we got but could not publish yet (published on the next try)."""

    csr: bytes
    certificate: bytes
    chain: list[bytes]


class AcmeService(service.MultiService):
    """gitdns-acme: the hidden secondary, the planner after each change, one issuance
    at a time per name, backoff per name, and a timer for renewals and retries."""

    def __init__(self, config: AcmeConfig, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.reactor = reactor
        # Talk to the primary from the address we listen on, when that is one address.
        self.primary_reactor: Any = bound_to_listen_address(
            reactor, config.listen, config.primary[0]
        )
        self.secondary = _HiddenSecondary(
            SecondaryConfig(
                keys=config.keys,
                listen=config.listen,
                data_dir=os.path.join(config.data_dir, "zones"),
                primary_port=config.primary[1],
                primary=config.primary[0],
                metrics=config.metrics,
            ),
            clock=self.primary_reactor,
        )
        self.secondary.setServiceParent(self)
        self.secondary.authority.on_change(self._zones_changed)
        self.stopping = threading.Event()
        self.account: AcmeAccount | None = None
        self.renew = config.renew_days * certify.DAY
        self._started = 0.0
        self._plans: dict[dns.name.Name, certify.Plan] = {}
        self._running: set[dns.name.Name] = set()
        self._backoff: dict[dns.name.Name, _Backoff] = {}
        self.metrics = self.secondary.metrics
        self.metrics.certificates_due = lambda: len(self._running | self._backoff.keys())
        self._issued: dict[dns.name.Name, _Issued] = {}
        self._published: dict[dns.name.Name, tuple[dns.rrset.RRset, float]] = {}
        self._told: set[tuple[dns.name.Name, str]] = set()
        self._renew_at: dict[bytes, float] = {}
        self._ari_next: dict[bytes, float] = {}
        self._ari_running: set[bytes] = set()
        self._timer: IDelayedCall | None = None
        self._register: task.LoopingCall | None = None

    def prepare(self) -> None:
        """Before the reactor runs: the account key, and the zone copies on disk."""
        os.makedirs(self.config.data_dir, mode=0o700, exist_ok=True)
        key = load_or_create_account_key(self.config.account_key_path)
        verify: bool | str = self.config.ca_file or True
        self.account = AcmeAccount(
            self.config.directory, key, self.config.email, verify, self.stopping
        )
        self.secondary.prepare()

    def startService(self) -> None:
        self._started = self.reactor.seconds()
        super().startService()
        log.info(
            "ACME directory {url}, primary {host} port {port}, renewing {days:g} days before "
            "expiry",
            url=self.config.directory,
            host=self.config.primary[0],
            port=self.config.primary[1],
            days=self.config.renew_days,
        )
        self._register = task.LoopingCall(self._check_primary)
        self._register.clock = self.reactor
        self._register.start(REGISTER_INTERVAL, now=False)
        self._rescan()

    def stopService(self) -> defer.Deferred[object]:
        self.stopping.set()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._register is not None and self._register.running:
            self._register.stop()
        return defer.maybeDeferred(super().stopService)

    def _check_primary(self) -> None:
        for origin in list(self.secondary.carried):
            self.secondary.check_now(origin)

    # -- planning -------------------------------------------------------------------

    def _zones_changed(self, result: LoadResult, previous: Served) -> None:
        self._rescan(result.changed)

    def _zones(self) -> ZoneSet:
        return self.secondary.authority.served.zones

    def _confirmed(self, origin: dns.name.Name) -> bool:
        """Has the primary confirmed our copy of origin since we started? A copy read
        from disk may miss certificates published while we were down."""
        carried = self.secondary.carried.get(origin)
        copy = carried.state.copy if carried is not None else None
        expired = origin in self.secondary.authority.served.expired
        return copy is not None and copy.contact >= self._started and not expired

    def _rescan(self, origins: Iterable[dns.name.Name] | None = None) -> None:
        if not self.running:
            return
        zones = self._zones().zones
        now = self.reactor.seconds()
        for origin in list(zones) if origins is None else origins:
            zone = zones.get(origin)
            if zone is None or not self._confirmed(origin):
                self._plans.pop(origin, None)
                continue
            self._plans[origin] = certify.plan(zone, now, self.renew, self._renew_at)
        for origin in list(self._plans):
            if origin not in zones:
                del self._plans[origin]
        self._act(now)

    def _act(self, now: float) -> None:
        wake = [now + LONGEST_SLEEP]
        if any(not self._confirmed(origin) for origin in self._zones().zones):
            wake.append(now + UNCONFIRMED_RECHECK)
        for plan in self._plans.values():
            for skipped in plan.skipped:
                self._tell(skipped)
            if plan.wake_at is not None:
                wake.append(plan.wake_at)
            for current in plan.current:
                wake.append(self._check_renewal_info(current, now))
            for order in plan.orders:
                owner = order.owner
                if owner in self._running:
                    continue
                backoff = self._backoff.get(owner)
                if backoff is not None and backoff.csr == order.csr and now < backoff.at:
                    wake.append(backoff.at)
                    continue
                published = self._published.get(owner)
                if published is not None:
                    if published[0] == order.rrset and now < published[1]:
                        wake.append(published[1])
                        continue  # our copy has not caught up with our UPDATE yet
                    del self._published[owner]
                self._start(order)
        self._sleep_until(min(wake))

    def _sleep_until(self, at: float) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        # Never sooner than a second: a time in the past must not make a busy loop.
        delay = max(1.0, at - self.reactor.seconds())
        self._timer = self.reactor.callLater(delay, self._rescan)

    def _tell(self, skipped: certify.Skipped) -> None:
        told = (skipped.owner, skipped.reason)
        if told not in self._told:
            self._told.add(told)
            log.warn(
                "ACME {owner}: skipped: {reason}", owner=str(skipped.owner), reason=skipped.reason
            )

    # -- one name -------------------------------------------------------------------

    def _start(self, order: certify.Order) -> None:
        self._running.add(order.owner)
        d = defer.Deferred.fromCoroutine(self._issue(order))
        d.addCallbacks(self._succeeded, self._failed, (order,), None, (order,), None)
        d.addErrback(lambda f: log.failure("Bug: issuing for {owner}", f, owner=str(order.owner)))
        d.addBoth(lambda _: self._finished(order))

    def _succeeded(self, _: object, order: certify.Order) -> None:
        self._backoff.pop(order.owner, None)
        self.metrics.certificates_issued += 1

    def _failed(self, failure: Any, order: certify.Order) -> None:
        self.metrics.certificate_failures += 1
        previous = self._backoff.get(order.owner)
        failures = previous.failures + 1 if previous and previous.csr == order.csr else 1
        delay = min(self.config.retry_delay * 2 ** (failures - 1), RETRY_LONGEST)
        self._backoff[order.owner] = _Backoff(order.csr, failures, self.reactor.seconds() + delay)
        if self.account is not None:
            # A CA that restarted has forgotten our account: look it up again next time.
            self.account.forget()
        log.warn(
            "ACME {zone} {host}: failed (attempt {failures}): {reason}; again in {delay:g} s",
            zone=str(order.zone),
            host=_host(order),
            failures=failures,
            reason=_reason(failure),
            delay=delay,
        )

    def _finished(self, order: certify.Order) -> None:
        self._running.discard(order.owner)
        if self.running:
            self._rescan([])

    async def _issue(self, order: certify.Order) -> None:
        assert self.account is not None
        account = self.account
        zone, host = str(order.zone), _host(order)
        started = self.reactor.seconds()
        log.info(
            "ACME {zone} {host}: ordering a certificate for {names} ({reason})",
            zone=zone,
            host=host,
            names=", ".join(order.names),
            reason=order.reason,
        )
        csr = x509.load_der_x509_csr(order.csr)
        issued = self._issued.get(order.owner)
        if issued is not None and issued.csr == order.csr:
            certificate = x509.load_der_x509_certificate(issued.certificate)
            if not certify.matches(certificate, csr, started, self.renew):
                issued = None
        added: list[tuple[dns.name.Name, list[tuple[dns.name.Name, str]]]] = []
        try:
            if issued is None:
                issued = await self._order(order, csr, account, added)
                self._issued[order.owner] = issued
            else:
                log.info(
                    "ACME {zone} {host}: publishing the certificate again", zone=zone, host=host
                )
            key = self._update_key(order.zone)
            update = certify.publish_update(
                order.zone, order.rrset, issued.certificate, issued.chain, key
            )
            rcode = await self._send_update(update)
            if rcode != dns.rcode.NOERROR:
                raise AcmeError(f"UPDATE publishing the certificate: {dns.rcode.to_text(rcode)}")
            del self._issued[order.owner]
            self._published[order.owner] = (order.rrset, self.reactor.seconds() + PUBLISHED_GRACE)
            log.info(
                "ACME {zone} {host}: certificate {fingerprint} published with {chain} CA "
                "certificates, {elapsed:.1f} s after the order",
                zone=zone,
                host=host,
                fingerprint=certify.fingerprint(issued.certificate),
                chain=len(issued.chain),
                elapsed=self.reactor.seconds() - started,
            )
        finally:
            # The challenge goes once the certificate is out, or when the order failed.
            for origin, group in added:
                await self._remove_challenge(order, origin, group)

    async def _order(
        self,
        order: certify.Order,
        csr: x509.CertificateSigningRequest,
        account: AcmeAccount,
        added: list[tuple[dns.name.Name, list[tuple[dns.name.Name, str]]]],
    ) -> _Issued:
        """Order, validate and finalize; added lists the challenges put in DNS."""
        zone, host = str(order.zone), _host(order)
        csr_pem = csr.public_bytes(serialization.Encoding.PEM)
        ordered: _Ordered = await threads.deferToThread(account.order, csr_pem)
        log.info(
            "ACME {zone} {host}: order {url}: {total} authorizations, {pending} to validate",
            zone=zone,
            host=host,
            url=ordered.order.uri,
            total=len(ordered.order.authorizations),
            pending=len(ordered.pending),
        )
        records = [(certify.challenge_name(c.domain), c.validation) for c in ordered.pending]
        for origin, group in self._by_zone(records):
            update = certify.challenge_update(origin, group, self._update_key(origin), add=True)
            rcode = await self._send_update(update)
            if rcode != dns.rcode.NOERROR:
                raise AcmeError(f"UPDATE adding the challenge: {dns.rcode.to_text(rcode)}")
            added.append((origin, group))
            log.info(
                "ACME {zone} {host}: challenge TXT {names} added",
                zone=zone,
                host=host,
                names=", ".join(sorted({str(name) for name, _ in group})),
            )
        if records:
            await self._propagated(order, records)
            await threads.deferToThread(account.answer, ordered)
            answered = self.reactor.seconds()
            deadline = answered + ORDER_TIMEOUT
            await threads.deferToThread(account.validate, ordered, deadline)
            log.info(
                "ACME {zone} {host}: challenges valid after {elapsed:.1f} s",
                zone=zone,
                host=host,
                elapsed=self.reactor.seconds() - answered,
            )
        deadline = self.reactor.seconds() + ORDER_TIMEOUT
        fullchain = await threads.deferToThread(account.finalize, ordered, deadline)
        leaf, chain = certify.split_pem_chain(fullchain)
        certificate = x509.load_der_x509_certificate(leaf)
        if not certify.matches(certificate, csr, self.reactor.seconds()):
            raise AcmeError("the CA's certificate does not match the CSR")
        log.info(
            "ACME {zone} {host}: certificate {fingerprint} issued, valid until {until}",
            zone=zone,
            host=host,
            fingerprint=certify.fingerprint(leaf),
            until=certificate.not_valid_after_utc.isoformat(),
        )
        return _Issued(order.csr, leaf, chain)

    async def _remove_challenge(
        self, order: certify.Order, origin: dns.name.Name, group: list[tuple[dns.name.Name, str]]
    ) -> None:
        # Best effort, never raising: the order's outcome is what counts; a TXT left
        # behind is harmless and logged.
        update = certify.challenge_update(origin, group, self._update_key(origin), add=False)
        try:
            rcode = await self._send_update(update)
        except Exception as error:
            rcode, reason = None, str(error)
        else:
            reason = dns.rcode.to_text(rcode)
        if rcode == dns.rcode.NOERROR:
            log.info(
                "ACME {zone} {host}: challenge TXT removed", zone=str(order.zone), host=_host(order)
            )
        else:
            log.warn(
                "ACME {zone} {host}: could not remove the challenge TXT: {reason}",
                zone=str(order.zone),
                host=_host(order),
                reason=reason,
            )

    def _by_zone(
        self, records: Sequence[tuple[dns.name.Name, str]]
    ) -> list[tuple[dns.name.Name, list[tuple[dns.name.Name, str]]]]:
        groups: dict[dns.name.Name, list[tuple[dns.name.Name, str]]] = {}
        for name, value in records:
            zone = self._zones().find(name)
            if zone is None:
                raise AcmeError(f"{name} is in no zone we hold")
            groups.setdefault(zone.origin, []).append((name, value))
        return list(groups.items())

    def _update_key(self, zone: dns.name.Name) -> Any:
        """The TSIG key for UPDATEs of zone: the most specific key granting it."""
        allowed = [
            key
            for key in self.config.keys
            if key.role is not None and key.role.grants(Operation.UPDATE, zone)
        ]
        if not allowed:
            raise AcmeError(f"no --key may update {zone}")
        return max(allowed, key=lambda key: len(key.role.zone)).tsig_key()  # type: ignore[union-attr]

    async def _send_update(self, update: dns.message.Message) -> int:
        host, port = self.config.primary
        response = await query_tcp(self.primary_reactor, host, port, update, UPDATE_TIMEOUT)
        if not response.had_tsig:
            raise AcmeError(f"unsigned {dns.rcode.to_text(response.rcode())} answer to UPDATE")
        return response.rcode()

    # -- propagation ------------------------------------------------------------------

    def authoritative_servers(self, origin: dns.name.Name) -> list[tuple[str, int]]:
        """The primary, and the addresses of the zone's NS names that we know."""
        servers = [self.config.primary]
        zones = self._zones()
        zone = zones.zones.get(origin)
        if zone is None:
            return servers
        for ns in zone.nodes.get(origin, {}).get(dns.rdatatype.NS, ()):
            addresses = _addresses(zones, ns.target)
            if not addresses:
                told = (ns.target, "no address")
                if told not in self._told:
                    self._told.add(told)
                    log.warn(
                        "ACME {zone}: name server {ns} has no address in our zones: the "
                        "challenge is not checked there",
                        zone=str(origin),
                        ns=str(ns.target),
                    )
            for address in addresses:
                if (address, self.config.ns_port) not in servers:
                    servers.append((address, self.config.ns_port))
        return servers

    async def _propagated(
        self, order: certify.Order, records: Sequence[tuple[dns.name.Name, str]]
    ) -> None:
        """Wait until every authoritative server serves every challenge (bounded)."""
        wanted: dict[dns.name.Name, set[str]] = {}
        for name, value in records:
            wanted.setdefault(name, set()).add(value)
        every = self._all_checks(order, wanted)
        checks = list(every)
        started = self.reactor.seconds()
        deadline = started + self.config.propagation_timeout
        delay = 0.05
        while True:
            results = await defer.gatherResults(
                [
                    defer.Deferred.fromCoroutine(self._serves(server, name, values))
                    for server, name, values in checks
                ]
            )
            checks = [check for check, ok in zip(checks, results, strict=True) if not ok]
            if not checks:
                break
            if self.reactor.seconds() + delay > deadline:
                missing = ", ".join(sorted({f"{h} port {p}" for (h, p), _, _ in checks}))
                raise AcmeError(
                    f"the challenge TXT is not served by {missing} after "
                    f"{self.config.propagation_timeout:g} s"
                )
            await task.deferLater(self.reactor, delay)
            delay = min(delay * 2, 2.0)
        servers = {server for server, _, _ in every}
        log.info(
            "ACME {zone} {host}: challenge served by {count} servers ({servers}) after "
            "{elapsed:.2f} s",
            zone=str(order.zone),
            host=_host(order),
            count=len(servers),
            servers=", ".join(f"{h}:{p}" for h, p in sorted(servers)),
            elapsed=self.reactor.seconds() - started,
        )

    def _all_checks(
        self, order: certify.Order, wanted: Mapping[dns.name.Name, set[str]]
    ) -> list[tuple[tuple[str, int], dns.name.Name, set[str]]]:
        checks = []
        for name, values in wanted.items():
            zone = self._zones().find(name)
            origin = zone.origin if zone is not None else order.zone
            checks.extend((server, name, values) for server in self.authoritative_servers(origin))
        return checks

    async def _serves(self, server: tuple[str, int], name: dns.name.Name, values: set[str]) -> bool:
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        query.flags &= ~dns.flags.RD
        host, port = server
        try:
            # TCP first: no truncation, and no log line per UDP socket from Twisted.
            response = await query_tcp_then_udp(self.reactor, host, port, query, QUERY_TIMEOUT)
        except DNSClientError:
            return False
        served = {
            b"".join(rdata.strings).decode("ascii", "replace")
            for rrset in response.answer
            if rrset.name == name and rrset.rdtype == dns.rdatatype.TXT
            for rdata in rrset
        }
        return values <= served

    # -- renewal information (RFC 9773) -----------------------------------------------

    def _check_renewal_info(self, current: certify.Current, now: float) -> float:
        """Ask the CA when to renew current (in a thread); when to look again."""
        der = current.certificate
        due = self._ari_next.get(der, 0.0)
        if now < due or der in self._ari_running or self.account is None:
            return max(due, now + 1.0) if due else now + ARI_RETRY
        self._ari_running.add(der)
        account = self.account
        pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)

        def answered(result: tuple[float | None, float]) -> None:
            when, again = result
            self._ari_next[der] = max(again, self.reactor.seconds() + 60)
            if when is not None and self._renew_at.get(der) != when:
                self._renew_at[der] = when
                log.info(
                    "ACME {owner}: the CA suggests renewing at {when}",
                    owner=str(current.owner),
                    when=datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(),
                )
                self._rescan()

        def failed(failure: Any) -> None:
            self._ari_next[der] = self.reactor.seconds() + ARI_RETRY
            log.info(
                "ACME {owner}: no renewal information: {reason}",
                owner=str(current.owner),
                reason=_reason(failure),
            )

        d = threads.deferToThread(account.renewal_time, pem)
        d.addCallbacks(answered, failed)
        d.addBoth(lambda _: self._ari_running.discard(der))
        return now + ARI_RETRY


def _version(host: str) -> int:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return 4


def _host(order: certify.Order) -> str:
    host = certify.host_of(order.owner)
    return str(host) if host is not None else str(order.owner)


def _reason(failure: Any) -> str:
    error = failure.value
    if isinstance(error, messages.Error):
        return f"{error.typ}: {error.detail}" if error.detail else str(error.typ)
    if isinstance(error, requests.exceptions.RequestException):
        # requests nests urllib3's errors into one long line: keep what happened.
        found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
        what = found.group(1) if found else type(error).__name__
        url = error.request.url if error.request is not None else "the CA"
        return f"{url}: {what}"
    return str(error) or type(error).__name__


def _addresses(zones: ZoneSet, name: dns.name.Name) -> list[str]:
    zone: Zone | None = zones.find(name)
    if zone is None:
        return []
    node = zone.nodes.get(name, {})
    return [
        rdata.address
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for rdata in node.get(rdtype, ())
    ]


def make_acme(options: Mapping[str, Any]) -> AcmeService:
    """The service for twistd's options."""
    config = AcmeConfig(
        keys=options["key"],
        primary=options["primary"],
        directory=options["directory"],
        account_key=options["account-key"],
        email=options["email"],
        ca_file=options["ca-file"],
        renew_days=options["renew-days"],
        data_dir=options["data-dir"],
        listen=options["listen"] or AcmeConfig.__dataclass_fields__["listen"].default_factory(),
        ns_port=options["ns-port"],
        retry_delay=options["retry-delay"],
        propagation_timeout=options["propagation-timeout"],
        metrics=options["metrics"],
    )
    acme = AcmeService(config)
    acme.prepare()
    # Its account key and zone copies, made as root, are written after the drop too.
    give_away_to_twistd_user(options, config.data_dir)
    return acme


# ---------------------------------------------------------------------------- the client side


class CertifyError(Exception):
    """No certificate: the server refused, or none appeared in time."""


async def _zone_of(reactor: Any, server: str, port: int, name: dns.name.Name) -> dns.name.Name:
    query = dns.message.make_query(name, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    response = await query_tcp(reactor, server, port, query, QUERY_TIMEOUT)
    zone = certify.zone_of_response(response)
    if zone is None or not response.flags & dns.flags.AA:
        rcode = dns.rcode.to_text(response.rcode())
        raise CertifyError(f"{server} port {port} is not authoritative for {name} ({rcode})")
    return zone


async def _tlsa(
    reactor: Any, server: str, port: int, owner: dns.name.Name
) -> dns.rrset.RRset | None:
    # TCP: a certificate and its chain do not fit in a UDP answer.
    query = dns.message.make_query(owner, dns.rdatatype.TLSA)
    query.flags &= ~dns.flags.RD
    response = await query_tcp(reactor, server, port, query, QUERY_TIMEOUT)
    for rrset in response.answer:
        if rrset.name == owner and rrset.rdtype == dns.rdatatype.TLSA:
            return rrset
    return None


async def _obtain(
    reactor: Any,
    server: str,
    port: int,
    key: Key,
    csr: x509.CertificateSigningRequest,
    timeout: float,
    say: Callable[[str], None],
) -> certify.Found:
    started = reactor.seconds()
    names = sorted(certify.names_of(csr))
    first = csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    host = dns.name.from_text(str(first[0].value) if first else names[0])
    owner = certify.tlsa_name(host)
    zone = await _zone_of(reactor, server, port, owner)
    rrset = await _tlsa(reactor, server, port, owner)
    found = certify.find_certificate(rrset, csr, reactor.seconds())
    if found is not None:
        say(f"{owner}: a matching certificate is published already")
        return found
    if certify.csr_published(rrset, csr):
        say(f"{owner}: our request is published already; waiting for the certificate")
    else:
        der = csr.public_bytes(serialization.Encoding.DER)
        update = certify.upload_update(zone, host, der, key.tsig_key())
        response = await query_tcp(reactor, server, port, update, UPDATE_TIMEOUT)
        if response.rcode() != dns.rcode.NOERROR:
            rcode = dns.rcode.to_text(response.rcode())
            raise CertifyError(f"UPDATE of {owner} in zone {zone}: {rcode}")
        say(f"{owner}: CSR for {', '.join(names)} published in zone {zone}")
    delay = 0.1
    while True:
        try:
            rrset = await _tlsa(reactor, server, port, owner)
        except DNSClientError as error:
            say(f"{owner}: {error}")  # the server may restart meanwhile: keep polling
            rrset = None
        found = certify.find_certificate(rrset, csr, reactor.seconds())
        if found is not None:
            return found
        if reactor.seconds() + delay > started + timeout:
            raise CertifyError(f"no certificate for {owner} after {timeout:g} s")
        await task.deferLater(reactor, delay)
        delay = min(delay * 1.5, 1.0)


def obtain_certificate(
    reactor: Any,
    server: str,
    port: int,
    key: Key,
    csr: x509.CertificateSigningRequest,
    timeout: float = 120.0,
    say: Callable[[str], None] = lambda _: None,
) -> defer.Deferred[certify.Found]:
    """A certificate for csr through the DNS server (as ocertify does): unless a
    matching valid certificate is published, upload the CSR with one UPDATE signed by
    key, then poll the TLSA RRset until a certificate for it appears (or timeout)."""
    return defer.Deferred.fromCoroutine(_obtain(reactor, server, port, key, csr, timeout, say))


def parse_host_port(text: str, default_port: int = 53) -> tuple[str, int]:
    """`HOST`, `HOST:PORT`, `V6` or `[V6]:PORT` -> (IP address, port); ValueError."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [ADDRESS]:PORT")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{text!r}: bad port {port!r}")
    return address, int(port)
