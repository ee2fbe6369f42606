"""Certificates through DNS (SPEC.md "Certificates through DNS"): pure.

A service publishes a certificate signing request as `TLSA 3 255 0 <DER>` at
`_letsencrypt._tcp.<host>`; the ACME helper (gitdns/acme.py) publishes the certificate
as `TLSA 3 0 0 <DER>` and its CA chain as `TLSA 0 0 0 <DER>` beside it. This module
names, encodes and matches those records, decides what to (re)issue given a zone and
`now`, and builds the UPDATE messages; times are seconds since the epoch, passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.TLSA
import dns.rdtypes.ANY.TXT
import dns.rrset
import dns.tsig
import dns.update
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gitdns.zones import Zone

TTL = 3600
# Challenge TXT records live for minutes; a short TTL keeps resolvers from holding
# on to an old value when the same name is validated again.
CHALLENGE_TTL = 60
# A certificate whose notBefore is this much in the future still counts as valid:
# clocks differ, and re-issuing for a CA that is a little ahead would loop.
CLOCK_SKEW = 300.0
DAY = 86400.0

PREFIX = (b"_letsencrypt", b"_tcp")
CHALLENGE_LABEL = b"_acme-challenge"

# (usage, selector, matching type) of the three kinds of records (seed, RFC 6698 7.1).
CSR = (3, 255, 0)
CERTIFICATE = (3, 0, 0)
CA = (0, 0, 0)

TLSA = dns.rdatatype.TLSA
TXT = dns.rdatatype.TXT


# ---------------------------------------------------------------------------- names


def tlsa_name(host: dns.name.Name) -> dns.name.Name:
    """`_letsencrypt._tcp.<host>`, where host's CSR and certificate live."""
    return dns.name.Name(PREFIX + host.labels)


def host_of(owner: dns.name.Name) -> dns.name.Name | None:
    """The host of a `_letsencrypt._tcp.<host>` owner, None for any other name."""
    labels = owner.labels
    if len(labels) < 3 or tuple(label.lower() for label in labels[:2]) != PREFIX:
        return None
    return dns.name.Name(labels[2:])


def challenge_name(name: str | dns.name.Name) -> dns.name.Name:
    """`_acme-challenge.<name>`; for `*.example.com` at `_acme-challenge.example.com`
    (RFC 8555 8.4: a wildcard is validated at its base domain)."""
    if isinstance(name, str):
        name = dns.name.from_text(name)
    if name.labels and name.labels[0] == b"*":
        name = dns.name.Name(name.labels[1:])
    return dns.name.Name((CHALLENGE_LABEL, *name.labels))


def name_text(name: str | dns.name.Name) -> str:
    """A host name as certificates spell it: lower case, no final dot."""
    if isinstance(name, dns.name.Name):
        name = name.to_text(omit_final_dot=True)
    return name.rstrip(".").lower()


# ---------------------------------------------------------------------------- records


def _tlsa(kind: tuple[int, int, int], der: bytes) -> dns.rdtypes.ANY.TLSA.TLSA:
    usage, selector, mtype = kind
    return dns.rdtypes.ANY.TLSA.TLSA(dns.rdataclass.IN, TLSA, usage, selector, mtype, der)


def csr_record(der: bytes) -> dns.rdtypes.ANY.TLSA.TLSA:
    return _tlsa(CSR, der)


def certificate_record(der: bytes) -> dns.rdtypes.ANY.TLSA.TLSA:
    return _tlsa(CERTIFICATE, der)


def ca_record(der: bytes) -> dns.rdtypes.ANY.TLSA.TLSA:
    return _tlsa(CA, der)


def kind_of(rdata: dns.rdata.Rdata) -> tuple[int, int, int] | None:
    """CSR, CERTIFICATE, CA, or None for a TLSA record of none of these kinds."""
    kind = (rdata.usage, rdata.selector, rdata.mtype)  # type: ignore[attr-defined]
    return kind if kind in (CSR, CERTIFICATE, CA) else None


@dataclass(frozen=True)
class Published:
    """What one `_letsencrypt._tcp.<host>` TLSA RRset holds, DER by kind, in RRset order."""

    owner: dns.name.Name
    host: dns.name.Name
    rrset: dns.rrset.RRset
    csrs: tuple[bytes, ...] = ()
    certificates: tuple[bytes, ...] = ()
    chain: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, rrset: dns.rrset.RRset) -> Published | None:
        host = host_of(rrset.name)
        if host is None or rrset.rdtype != TLSA:
            return None
        found: dict[tuple[int, int, int], list[bytes]] = {CSR: [], CERTIFICATE: [], CA: []}
        for rdata in rrset:
            kind = kind_of(rdata)
            if kind is not None:
                found[kind].append(rdata.cert)  # type: ignore[attr-defined]
        return cls(
            rrset.name,
            host,
            rrset,
            tuple(found[CSR]),
            tuple(found[CERTIFICATE]),
            tuple(found[CA]),
        )


def published(zone: Zone) -> list[Published]:
    """Every `_letsencrypt._tcp` TLSA RRset of zone, by owner name."""
    found = []
    for node in zone.nodes.values():
        rrset = node.get(TLSA)
        if rrset is not None and (entry := Published.of(rrset)) is not None:
            found.append(entry)
    return sorted(found, key=lambda entry: entry.owner)


# ---------------------------------------------------------------------------- matching


def names_of(item: x509.Certificate | x509.CertificateSigningRequest) -> frozenset[str]:
    """The DNS names a certificate or CSR is for: its subjectAltName DNS names and its
    common name (ACME takes both from a CSR), lower case, no final dot."""
    names = set()
    for attribute in item.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value
        names.add(name_text(value if isinstance(value, str) else value.decode()))
    try:
        san = item.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        pass
    else:
        names.update(name_text(name) for name in san.value.get_values_for_type(x509.DNSName))
    return frozenset(names)


def public_key_der(item: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return item.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def renewal_time(certificate: x509.Certificate, renew: float) -> float:
    """When to replace certificate: renew seconds before it expires, but not before half
    its lifetime has passed (a --renew-days longer than a short-lived certificate's
    life must not re-issue in a loop)."""
    start = certificate.not_valid_before_utc.timestamp()
    end = certificate.not_valid_after_utc.timestamp()
    return max(end - renew, start + (end - start) / 2)


def matches(
    certificate: x509.Certificate,
    csr: x509.CertificateSigningRequest,
    now: float,
    renew: float | None = None,
) -> bool:
    """SPEC.md: the same public key, the same names, valid now; with renew (seconds),
    also not yet due for renewal (renewal_time)."""
    if public_key_der(certificate) != public_key_der(csr):
        return False
    if names_of(certificate) != names_of(csr):
        return False
    if certificate.not_valid_before_utc.timestamp() > now + CLOCK_SKEW:
        return False
    if renew is None:
        return now < certificate.not_valid_after_utc.timestamp()
    return now < renewal_time(certificate, renew)


def load_certificate(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def load_csr(der: bytes) -> x509.CertificateSigningRequest:
    """Raises ValueError when der is no CSR or its signature does not verify."""
    csr = x509.load_der_x509_csr(der)
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not verify")
    return csr


def fingerprint(der: bytes) -> str:
    """Short SHA-256 of a certificate or CSR, for log lines."""
    return hashlib.sha256(der).hexdigest()[:16]


def order_chain(leaf: x509.Certificate, cas: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    """The CA certificates from the leaf's issuer upwards (an RRset has no order);
    certificates that fit nowhere come last."""
    left = list(cas)
    ordered: list[x509.Certificate] = []
    current = leaf
    while left:
        issuer = next((ca for ca in left if ca.subject == current.issuer), None)
        if issuer is None:
            break
        ordered.append(issuer)
        left.remove(issuer)
        current = issuer
    return ordered + left


# ---------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Order:
    """A certificate to get for the CSR at owner (SPEC.md: exactly one CSR, no valid
    matching certificate)."""

    zone: dns.name.Name
    owner: dns.name.Name
    csr: bytes
    names: tuple[str, ...]
    reason: str
    # The TLSA RRset as seen: publishing requires it unchanged (RFC 2136 prerequisite).
    rrset: dns.rrset.RRset


@dataclass(frozen=True)
class Skipped:
    """A `_letsencrypt._tcp` owner we cannot act on, and why."""

    owner: dns.name.Name
    reason: str
    csr: bytes = b""


@dataclass(frozen=True)
class Current:
    """A published certificate that serves its CSR until due (for renewal information)."""

    owner: dns.name.Name
    certificate: bytes
    due: float


@dataclass(frozen=True)
class Plan:
    orders: list[Order] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    current: list[Current] = field(default_factory=list)
    # The earliest time a current certificate falls due (None: none will).
    wake_at: float | None = None


def check_names(names: Iterable[str], host: dns.name.Name, zone: dns.name.Name) -> str | None:
    """Why a CSR's names cannot be validated from zone by dns-01, or None if they can."""
    names = list(names)
    if not names:
        return "the CSR names no host"
    if name_text(host) not in names:
        return f"the CSR does not name {name_text(host)}"
    for text in names:
        try:
            name = dns.name.from_text(text)
        except (dns.exception.DNSException, UnicodeError):
            return f"{text!r} is not a host name"
        if b"*" in name.labels[1:]:
            return f"{text}: a wildcard must be the leftmost label"
        if not name.is_subdomain(zone):
            return f"{text} is not in zone {zone}"
    return None


def plan(
    zone: Zone,
    now: float,
    renew: float,
    renew_at: Mapping[bytes, float] | None = None,
) -> Plan:
    """What to issue in zone at now: an Order for every owner with exactly one CSR and
    no certificate that matches it and is not due (renew seconds before expiry, or at
    renew_at[certificate DER], the CA's renewal information, when that is earlier)."""
    renew_at = renew_at or {}
    result = Plan()
    wake: list[float] = []
    for entry in published(zone):
        if not entry.csrs:
            continue  # TLSA records of someone else's making
        if len(entry.csrs) > 1:
            result.skipped.append(Skipped(entry.owner, f"{len(entry.csrs)} CSRs (need one)"))
            continue
        der = entry.csrs[0]
        try:
            csr = load_csr(der)
        except ValueError as error:
            result.skipped.append(Skipped(entry.owner, f"the CSR does not parse: {error}", der))
            continue
        names = sorted(names_of(csr))
        problem = check_names(names, entry.host, zone.origin)
        if problem is not None:
            result.skipped.append(Skipped(entry.owner, problem, der))
            continue
        reason = "no certificate"
        for cert_der in entry.certificates:
            certificate = load_certificate(cert_der)
            if certificate is None or not matches(certificate, csr, now):
                reason = "no valid certificate for this CSR"
                continue
            due = renewal_time(certificate, renew)
            hint = renew_at.get(cert_der)
            if hint is not None and hint < due:
                due = hint
            if now < due:
                result.current.append(Current(entry.owner, cert_der, due))
                wake.append(due)
                break
            reason = "renewal information says renew" if due == hint else "due for renewal"
        else:
            result.orders.append(
                Order(zone.origin, entry.owner, der, tuple(names), reason, entry.rrset)
            )
    return Plan(result.orders, result.skipped, result.current, min(wake) if wake else None)


# ---------------------------------------------------------------------------- updates


def _update(zone: dns.name.Name, key: dns.tsig.Key | None) -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(zone)
    if key is not None:
        update.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
    return update


def challenge_update(
    zone: dns.name.Name,
    records: Sequence[tuple[dns.name.Name, str]],
    key: dns.tsig.Key | None,
    *,
    add: bool,
) -> dns.update.UpdateMessage:
    """Add (or remove) challenge TXT records, each (name, value): single records, so that
    other challenges at the same name (a wildcard and its base) stay."""
    update = _update(zone, key)
    for name, value in records:
        rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, TXT, [value.encode("ascii")])
        if add:
            update.add(name, CHALLENGE_TTL, rdata)
        else:
            update.delete(name, rdata)
    return update


def publish_update(
    zone: dns.name.Name,
    seen: dns.rrset.RRset,
    certificate: bytes,
    chain: Sequence[bytes],
    key: dns.tsig.Key | None,
) -> dns.update.UpdateMessage:
    """Replace the certificates and chain at seen's owner by certificate and chain; the
    CSR stays. Only if the TLSA RRset is still seen (someone may have uploaded a new CSR
    meanwhile): the primary answers NXRRSET otherwise."""
    owner = seen.name
    update = _update(zone, key)
    # Value-dependent prerequisites carry TTL 0 (RFC 2136 2.4.2); dnspython would copy ours.
    update.present(owner, dns.rdataset.from_rdata_list(0, list(seen)))
    wanted = {certificate_record(certificate), *(ca_record(der) for der in chain)}
    for rdata in seen:
        if kind_of(rdata) in (CERTIFICATE, CA) and rdata not in wanted:
            update.delete(owner, rdata)
    for rdata in [certificate_record(certificate), *(ca_record(der) for der in chain)]:
        if rdata not in seen:
            update.add(owner, TTL, rdata)
    return update


def upload_update(
    zone: dns.name.Name, host: dns.name.Name, csr: bytes, key: dns.tsig.Key | None
) -> dns.update.UpdateMessage:
    """The client's request: one UPDATE that removes the TLSA RRset and adds the CSR."""
    owner = tlsa_name(host)
    update = _update(zone, key)
    update.delete(owner, TLSA)
    update.add(owner, TTL, csr_record(csr))
    return update


# ---------------------------------------------------------------------------- the client side


def split_pem_chain(pem: bytes | str) -> tuple[bytes, list[bytes]]:
    """A full chain in PEM (leaf first, as ACME returns it) -> (leaf DER, CA DERs)."""
    if isinstance(pem, str):
        pem = pem.encode("ascii")
    certificates = x509.load_pem_x509_certificates(pem)
    if not certificates:
        raise ValueError("no certificate in the chain")
    der = [c.public_bytes(serialization.Encoding.DER) for c in certificates]
    return der[0], der[1:]


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_csr(key: PrivateKey, names: Sequence[str]) -> x509.CertificateSigningRequest:
    """A CSR for names (the first is the common name), signed by key."""
    if not names:
        raise ValueError("a CSR needs at least one name")
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name_text(names[0]))])
    )
    san = x509.SubjectAlternativeName([x509.DNSName(name_text(n)) for n in names])
    return builder.add_extension(san, critical=False).sign(key, hashes.SHA256())


@dataclass(frozen=True)
class Found:
    """A certificate for the client: the leaf, its CA chain (issuer first) and PEM text."""

    certificate: x509.Certificate
    chain: list[x509.Certificate]

    def pem(self) -> bytes:
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in [self.certificate, *self.chain]
        )


def find_certificate(
    rrset: dns.rrset.RRset | None, csr: x509.CertificateSigningRequest, now: float
) -> Found | None:
    """A published certificate matching csr and valid now, with its chain."""
    entry = Published.of(rrset) if rrset is not None else None
    if entry is None:
        return None
    cas = [c for der in entry.chain if (c := load_certificate(der)) is not None]
    for der in entry.certificates:
        certificate = load_certificate(der)
        if certificate is not None and matches(certificate, csr, now):
            return Found(certificate, order_chain(certificate, cas))
    return None


def csr_published(rrset: dns.rrset.RRset | None, csr: x509.CertificateSigningRequest) -> bool:
    """Is a request for the same key and names the only CSR published already? Then
    uploading ours would only restart the work."""
    entry = Published.of(rrset) if rrset is not None else None
    if entry is None or len(entry.csrs) != 1:
        return False
    try:
        other = load_csr(entry.csrs[0])
    except ValueError:
        return False
    return public_key_der(other) == public_key_der(csr) and names_of(other) == names_of(csr)


def zone_of_response(response: dns.message.Message) -> dns.name.Name | None:
    """The zone an authoritative answer to an SOA query came from: the SOA's owner, in
    the answer (the name is the apex) or the authority section (NODATA, NXDOMAIN)."""
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset.name
    return None
