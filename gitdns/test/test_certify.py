"""Certificates through DNS: names, records, matching, planning and UPDATEs, with
certificates and CSRs made by cryptography and UPDATEs applied by gitdns.update."""

from __future__ import annotations

import datetime

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SynchronousTestCase

from gitdns import certify
from gitdns.update import apply_update
from gitdns.zones import Zone

ORIGIN = dns.name.from_text("example.")
NOW = 1_750_000_000.0
DAY = certify.DAY
KEY = dns.tsig.Key("acme._update.example.", b"0123456789abcdef0123456789abcdef")


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text, ORIGIN)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def der(item: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return item.public_bytes(serialization.Encoding.DER)


def at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


class CA:
    """A root and an intermediate that sign leaves for CSRs."""

    def __init__(self) -> None:
        self.root_key = new_key()
        self.root = self._ca("test root", self.root_key, self.root_key, None)
        self.key = new_key()
        self.intermediate = self._ca("test intermediate", self.key, self.root_key, self.root)

    def _ca(
        self,
        name: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at(NOW - 10 * DAY))
            .not_valid_after(at(NOW + 1000 * DAY))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    def issue(
        self,
        csr: x509.CertificateSigningRequest,
        start: float = NOW - DAY,
        days: float = 90,
        names: list[str] | None = None,
    ) -> x509.Certificate:
        names = names if names is not None else sorted(certify.names_of(csr))
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at(start))
            .not_valid_after(at(start + days * DAY))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )


def zone_with(*rrsets: dns.rrset.RRset) -> Zone:
    base = [
        dns.rrset.from_text(ORIGIN, 3600, "IN", "SOA", "ns1 hostmaster 1 3600 600 86400 60"),
        dns.rrset.from_text(ORIGIN, 3600, "IN", "NS", "ns1.example."),
    ]
    return Zone(ORIGIN, [*base, *rrsets])


def tlsa(owner: str, *rdatas: dns.rdata.Rdata) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(n(owner), certify.TTL, list(rdatas))


def received(update: dns.update.UpdateMessage) -> dns.message.Message:
    """The UPDATE as the primary reads it: rendered (signed) and parsed back."""
    return dns.message.from_wire(update.to_wire(), keyring={KEY.name: KEY})


class NamesTests(SynchronousTestCase):
    def test_tlsa_name_and_host(self) -> None:
        owner = certify.tlsa_name(n("www"))
        self.assertEqual(owner, n("_letsencrypt._tcp.www"))
        self.assertEqual(certify.host_of(owner), n("www"))
        self.assertEqual(certify.host_of(n("_LetsEncrypt._TCP.www")), n("www"))
        self.assertIsNone(certify.host_of(n("_tcp.www")))
        self.assertIsNone(certify.host_of(n("_letsencrypt._udp.www")))

    def test_wildcard_host_keeps_its_star(self) -> None:
        self.assertEqual(certify.tlsa_name(n("*")), n("_letsencrypt._tcp.*"))
        self.assertEqual(certify.host_of(n("_letsencrypt._tcp.*")), n("*"))

    def test_challenge_name_of_a_wildcard_is_its_base(self) -> None:
        self.assertEqual(certify.challenge_name("www.example"), n("_acme-challenge.www"))
        self.assertEqual(certify.challenge_name("*.example"), n("_acme-challenge"))
        self.assertEqual(certify.challenge_name(n("*.sub")), n("_acme-challenge.sub"))

    def test_names_of_take_common_name_and_san(self) -> None:
        key = new_key()
        csr = certify.make_csr(key, ["WWW.example.", "*.example", "example"])
        self.assertEqual(certify.names_of(csr), {"www.example", "*.example", "example"})
        self.assertEqual(
            csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "www.example"
        )
        self.assertRaises(ValueError, certify.make_csr, key, [])


class RecordTests(SynchronousTestCase):
    def test_three_kinds(self) -> None:
        self.assertEqual(certify.csr_record(b"\x01").to_text(), "3 255 0 01")
        self.assertEqual(certify.certificate_record(b"\x02").to_text(), "3 0 0 02")
        self.assertEqual(certify.ca_record(b"\x03").to_text(), "0 0 0 03")
        other = dns.rdata.from_text("IN", "TLSA", "3 1 0 0a0b")
        self.assertIsNone(certify.kind_of(other))

    def test_published_sorts_by_kind(self) -> None:
        rrset = tlsa(
            "_letsencrypt._tcp.www",
            certify.csr_record(b"csr"),
            certify.certificate_record(b"cert"),
            certify.ca_record(b"ca1"),
            certify.ca_record(b"ca2"),
            dns.rdata.from_text("IN", "TLSA", "3 1 0 0a0b"),
        )
        entry = certify.Published.of(rrset)
        assert entry is not None
        self.assertEqual(entry.host, n("www"))
        self.assertEqual(entry.csrs, (b"csr",))
        self.assertEqual(entry.certificates, (b"cert",))
        self.assertEqual(set(entry.chain), {b"ca1", b"ca2"})
        self.assertIsNone(certify.Published.of(tlsa("_443._tcp.www", certify.csr_record(b"x"))))


class MatchingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.ca = CA()
        self.key = new_key()
        self.csr = certify.make_csr(self.key, ["www.example", "web.example"])

    def test_same_key_same_names_valid_now(self) -> None:
        cert = self.ca.issue(self.csr)
        self.assertTrue(certify.matches(cert, self.csr, NOW))

    def test_other_key(self) -> None:
        other = certify.make_csr(new_key(), ["www.example", "web.example"])
        self.assertFalse(certify.matches(self.ca.issue(other), self.csr, NOW))

    def test_other_names(self) -> None:
        cert = self.ca.issue(self.csr, names=["www.example"])
        self.assertFalse(certify.matches(cert, self.csr, NOW))
        cert = self.ca.issue(self.csr, names=["www.example", "web.example", "x.example"])
        self.assertFalse(certify.matches(cert, self.csr, NOW))

    def test_expired_and_not_yet_valid(self) -> None:
        self.assertFalse(certify.matches(self.ca.issue(self.csr, NOW - 91 * DAY), self.csr, NOW))
        self.assertFalse(certify.matches(self.ca.issue(self.csr, NOW + DAY), self.csr, NOW))
        # A CA whose clock is a little ahead: still valid (re-issuing would loop).
        self.assertTrue(certify.matches(self.ca.issue(self.csr, NOW + 60), self.csr, NOW))

    def test_renewal_window(self) -> None:
        cert = self.ca.issue(self.csr, NOW - 50 * DAY)  # expires in 40 days
        self.assertTrue(certify.matches(cert, self.csr, NOW, renew=30 * DAY))
        self.assertFalse(certify.matches(cert, self.csr, NOW, renew=45 * DAY))
        self.assertTrue(certify.matches(cert, self.csr, NOW))

    def test_renewal_not_before_half_life(self) -> None:
        # A 6-day certificate with 30 renewal days: renewed at half its life, not at once.
        cert = self.ca.issue(self.csr, NOW, days=6)
        self.assertEqual(certify.renewal_time(cert, 30 * DAY), NOW + 3 * DAY)
        cert = self.ca.issue(self.csr, NOW, days=90)
        self.assertEqual(certify.renewal_time(cert, 30 * DAY), NOW + 60 * DAY)

    def test_order_chain_from_the_leaf_up(self) -> None:
        cert = self.ca.issue(self.csr)
        chain = certify.order_chain(cert, [self.ca.root, self.ca.intermediate])
        self.assertEqual(chain, [self.ca.intermediate, self.ca.root])

    def test_find_certificate_for_the_client(self) -> None:
        cert = self.ca.issue(self.csr)
        stale = self.ca.issue(self.csr, NOW - 100 * DAY)
        rrset = tlsa(
            "_letsencrypt._tcp.www",
            certify.csr_record(der(self.csr)),
            certify.certificate_record(der(stale)),
            certify.certificate_record(der(cert)),
            certify.ca_record(der(self.ca.intermediate)),
        )
        found = certify.find_certificate(rrset, self.csr, NOW)
        assert found is not None
        self.assertEqual(found.certificate, cert)
        self.assertEqual(found.chain, [self.ca.intermediate])
        leaf, chain = certify.split_pem_chain(found.pem())
        self.assertEqual((leaf, chain), (der(cert), [der(self.ca.intermediate)]))
        self.assertIsNone(certify.find_certificate(rrset, self.csr, NOW + 200 * DAY))
        self.assertIsNone(certify.find_certificate(None, self.csr, NOW))

    def test_csr_published(self) -> None:
        same = certify.make_csr(self.key, ["web.example", "www.example"])
        rrset = tlsa("_letsencrypt._tcp.www", certify.csr_record(der(same)))
        self.assertTrue(certify.csr_published(rrset, self.csr))
        other = certify.make_csr(new_key(), ["www.example", "web.example"])
        self.assertFalse(certify.csr_published(rrset, other))
        self.assertFalse(certify.csr_published(None, self.csr))


class PlanTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.ca = CA()
        self.key = new_key()
        self.csr = certify.make_csr(self.key, ["www.example"])
        self.owner = "_letsencrypt._tcp.www"

    def plan(self, *rrsets: dns.rrset.RRset, **kw: object) -> certify.Plan:
        return certify.plan(zone_with(*rrsets), NOW, 30 * DAY, **kw)  # type: ignore[arg-type]

    def test_nothing_without_csr(self) -> None:
        cert = self.ca.issue(self.csr)
        result = self.plan(tlsa(self.owner, certify.certificate_record(der(cert))))
        self.assertEqual((result.orders, result.skipped), ([], []))

    def test_csr_without_certificate(self) -> None:
        rrset = tlsa(self.owner, certify.csr_record(der(self.csr)))
        [order] = self.plan(rrset).orders
        self.assertEqual(order.owner, n(self.owner))
        self.assertEqual(order.zone, ORIGIN)
        self.assertEqual(order.csr, der(self.csr))
        self.assertEqual(order.names, ("www.example",))
        self.assertEqual(order.reason, "no certificate")
        self.assertEqual(order.rrset, rrset)

    def test_valid_certificate_wakes_at_renewal(self) -> None:
        cert = self.ca.issue(self.csr, NOW - DAY)
        rrset = tlsa(
            self.owner, certify.csr_record(der(self.csr)), certify.certificate_record(der(cert))
        )
        result = self.plan(rrset)
        self.assertEqual(result.orders, [])
        self.assertEqual(result.wake_at, NOW + 59 * DAY)
        self.assertEqual(
            result.current, [certify.Current(n(self.owner), der(cert), NOW + 59 * DAY)]
        )

    def test_due_or_stale_certificate_is_reissued(self) -> None:
        due = self.ca.issue(self.csr, NOW - 70 * DAY)
        [order] = self.plan(
            tlsa(
                self.owner, certify.csr_record(der(self.csr)), certify.certificate_record(der(due))
            )
        ).orders
        self.assertEqual(order.reason, "due for renewal")
        other = self.ca.issue(certify.make_csr(new_key(), ["www.example"]))
        [order] = self.plan(
            tlsa(
                self.owner,
                certify.csr_record(der(self.csr)),
                certify.certificate_record(der(other)),
            )
        ).orders
        self.assertEqual(order.reason, "no valid certificate for this CSR")

    def test_renewal_information_earlier(self) -> None:
        cert = self.ca.issue(self.csr, NOW - DAY)
        rrset = tlsa(
            self.owner, certify.csr_record(der(self.csr)), certify.certificate_record(der(cert))
        )
        [order] = self.plan(rrset, renew_at={der(cert): NOW - 1}).orders
        self.assertEqual(order.reason, "renewal information says renew")
        result = self.plan(rrset, renew_at={der(cert): NOW + DAY})
        self.assertEqual((result.orders, result.wake_at), ([], NOW + DAY))
        # Renewal information later than our own window does not postpone renewal.
        result = self.plan(rrset, renew_at={der(cert): NOW + 80 * DAY})
        self.assertEqual(result.wake_at, NOW + 59 * DAY)

    def test_skipped(self) -> None:
        two = tlsa(
            self.owner,
            certify.csr_record(der(self.csr)),
            certify.csr_record(der(certify.make_csr(new_key(), ["www.example"]))),
        )
        garbage = tlsa("_letsencrypt._tcp.bad", certify.csr_record(b"\x30\x03\x02\x01\x00"))
        wrong_host = tlsa(
            "_letsencrypt._tcp.mail",
            certify.csr_record(der(certify.make_csr(new_key(), ["www.example"]))),
        )
        outside = tlsa(
            "_letsencrypt._tcp.web",
            certify.csr_record(der(certify.make_csr(new_key(), ["web.example", "www.other"]))),
        )
        result = self.plan(two, garbage, wrong_host, outside)
        self.assertEqual(result.orders, [])
        reasons = {str(s.owner): s.reason for s in result.skipped}
        self.assertEqual(reasons[str(n(self.owner))], "2 CSRs (need one)")
        self.assertIn("the CSR does not parse", reasons[str(n("_letsencrypt._tcp.bad"))])
        self.assertEqual(
            reasons[str(n("_letsencrypt._tcp.mail"))], "the CSR does not name mail.example"
        )
        self.assertEqual(
            reasons[str(n("_letsencrypt._tcp.web"))], "www.other is not in zone example."
        )

    def test_bad_signature_is_skipped(self) -> None:
        raw = bytearray(der(self.csr))
        raw[-5] ^= 0xFF  # inside the signature
        result = self.plan(tlsa(self.owner, certify.csr_record(bytes(raw))))
        self.assertEqual(result.orders, [])
        self.assertIn("does not", result.skipped[0].reason)

    def test_wildcard_and_base_in_one_csr(self) -> None:
        csr = certify.make_csr(new_key(), ["*.example", "example"])
        [order] = self.plan(tlsa("_letsencrypt._tcp.*", certify.csr_record(der(csr)))).orders
        self.assertEqual(order.names, ("*.example", "example"))
        misplaced = certify.make_csr(new_key(), ["www.*.example"])
        result = self.plan(tlsa("_letsencrypt._tcp.www.*", certify.csr_record(der(misplaced))))
        self.assertEqual(result.orders, [])


class UpdateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.ca = CA()
        self.csr = certify.make_csr(new_key(), ["www.example"])
        self.owner = n("_letsencrypt._tcp.www")

    def test_upload_replaces_the_tlsa_rrset_by_the_csr(self) -> None:
        old = self.ca.issue(certify.make_csr(new_key(), ["www.example"]))
        zone = zone_with(
            tlsa("_letsencrypt._tcp.www", certify.certificate_record(der(old))),
            dns.rrset.from_text(n("www"), 300, "IN", "A", "192.0.2.1"),
        )
        update = certify.upload_update(ORIGIN, n("www"), der(self.csr), KEY)
        message = received(update)
        self.assertTrue(message.had_tsig)
        result = apply_update(zone, message)
        self.assertEqual(result.rcode, dns.rcode.NOERROR)
        rrset = result.zone.nodes[self.owner][dns.rdatatype.TLSA]
        self.assertEqual(list(rrset), [certify.csr_record(der(self.csr))])
        self.assertEqual(rrset.ttl, 3600)
        self.assertIn(dns.rdatatype.A, result.zone.nodes[n("www")])

    def test_challenge_add_and_remove_one_value_each(self) -> None:
        base = n("_acme-challenge")
        zone = zone_with(dns.rrset.from_text(base, 60, "IN", "TXT", '"someone-else"'))
        added = apply_update(
            zone,
            received(
                certify.challenge_update(
                    ORIGIN, [(base, "value1"), (base, "value2")], KEY, add=True
                )
            ),
        )
        texts = {rd.to_text() for rd in added.zone.nodes[base][dns.rdatatype.TXT]}
        self.assertEqual(texts, {'"someone-else"', '"value1"', '"value2"'})
        removed = apply_update(
            added.zone,
            received(
                certify.challenge_update(
                    ORIGIN, [(base, "value1"), (base, "value2")], KEY, add=False
                )
            ),
        )
        texts = {rd.to_text() for rd in removed.zone.nodes[base][dns.rdatatype.TXT]}
        self.assertEqual(texts, {'"someone-else"'})

    def test_publish_replaces_stale_certificates_and_keeps_the_csr(self) -> None:
        stale = self.ca.issue(self.csr, NOW - 100 * DAY)
        old_ca = CA().intermediate
        seen = tlsa(
            "_letsencrypt._tcp.www",
            certify.csr_record(der(self.csr)),
            certify.certificate_record(der(stale)),
            certify.ca_record(der(old_ca)),
            certify.ca_record(der(self.ca.intermediate)),
        )
        zone = zone_with(seen)
        new = self.ca.issue(self.csr)
        update = certify.publish_update(ORIGIN, seen, der(new), [der(self.ca.intermediate)], KEY)
        result = apply_update(zone, received(update))
        self.assertEqual(result.rcode, dns.rcode.NOERROR)
        self.assertEqual(
            set(result.zone.nodes[self.owner][dns.rdatatype.TLSA]),
            {
                certify.csr_record(der(self.csr)),
                certify.certificate_record(der(new)),
                certify.ca_record(der(self.ca.intermediate)),
            },
        )
        # The unchanged chain certificate is neither removed nor added again.
        changed = [rdata for _, _, rdata in result.removed + result.added]
        self.assertNotIn(certify.ca_record(der(self.ca.intermediate)), changed)

    def test_publish_refused_when_the_rrset_changed(self) -> None:
        seen = tlsa("_letsencrypt._tcp.www", certify.csr_record(der(self.csr)))
        newer = certify.make_csr(new_key(), ["www.example"])
        zone = zone_with(tlsa("_letsencrypt._tcp.www", certify.csr_record(der(newer))))
        cert = self.ca.issue(self.csr)
        update = certify.publish_update(ORIGIN, seen, der(cert), [], KEY)
        self.assertEqual(apply_update(zone, received(update)).rcode, dns.rcode.NXRRSET)
