"""Tests for gitdns.keys: key-name grammar, access decisions, key files."""

from __future__ import annotations

import base64
import ipaddress

import dns.message
import dns.name
import dns.tsig
from twisted.trial.unittest import SynchronousTestCase

from gitdns.keys import (
    Key,
    KeyLoad,
    KeyRole,
    Operation,
    algorithm_from_text,
    format_new_key,
    is_key_file,
    key_file_domain,
    key_role,
    load_keys,
    may,
    parse_key_argument,
    secret_size,
    tsig_keyring,
)

SECRET_TEXT = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
SECRET = base64.b64decode(SECRET_TEXT)
OTHER_TEXT = "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="
OTHER = base64.b64decode(OTHER_TEXT)

U, T, N = Operation.UPDATE, Operation.TRANSFER, Operation.NOTIFY


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


class MayTests(SynchronousTestCase):
    # Written out by hand from SPEC "Key names and access", not derived from the code.
    OPERATIONS_GRANTED = {
        "_update": {U, T, N},
        "_transfer": {T, N},
        "_notify": {N},
        None: set(),
    }
    # Zones relative to a key for example.com.: does the key reach them?
    ZONES_REACHED = {
        "example.com.": True,  # same zone
        "www.example.com.": True,  # child zone
        "a.b.example.com.": True,  # grandchild zone
        "com.": False,  # parent zone
        ".": False,  # the root
        "example.org.": False,  # sibling zone
        "other.com.": False,  # sibling under the same parent
        "badexample.com.": False,  # shares a suffix as text, not as labels
    }

    def test_every_operation_zone_relation_and_key_type(self) -> None:
        wrong = []
        for op_label, granted in self.OPERATIONS_GRANTED.items():
            key_name = f"k.{op_label}.example.com." if op_label else "k.example.com."
            root_key_name = f"k.{op_label}." if op_label else "k."
            for zone, reached in self.ZONES_REACHED.items():
                for operation in Operation:
                    expected = operation in granted and reached
                    if may(name(key_name), operation, name(zone)) != expected:
                        wrong.append((key_name, operation, zone, expected))
                    # A root key reaches every zone.
                    expected_root = operation in granted
                    if may(name(root_key_name), operation, name(zone)) != expected_root:
                        wrong.append((root_key_name, operation, zone, expected_root))
        self.assertEqual(wrong, [])

    def test_names_compare_case_insensitively(self) -> None:
        self.assertTrue(may(name("K._UPDATE.Example.COM."), U, name("www.EXAMPLE.com.")))
        self.assertTrue(may(name("k._Transfer."), T, name("Mirage.")))

    def test_rightmost_operation_label_counts(self) -> None:
        cases = [
            # key name, operation, zone, expected
            ("a._update.b._transfer.example.com.", U, "example.com.", False),
            ("a._update.b._transfer.example.com.", U, "b._transfer.example.com.", False),
            ("a._update.b._transfer.example.com.", T, "example.com.", True),
            ("a._transfer.b._update.example.com.", U, "example.com.", True),
            ("a._notify._update.example.com.", U, "example.com.", True),
            ("a._update._notify.example.com.", T, "example.com.", False),
            ("a._update._notify.example.com.", N, "example.com.", True),
            ("a._update.b._notify.", N, "anything.", True),
            ("a._update.b._notify.", U, "anything.", False),
        ]
        wrong = [case for case in cases if may(name(case[0]), case[1], name(case[2])) != case[3]]
        self.assertEqual(wrong, [])

    def test_only_whole_labels_are_operations(self) -> None:
        for key_name in ["k._updates.example.com.", "k.x_update.example.com.", "k.update.example."]:
            self.assertIsNone(key_role(name(key_name)), key_name)
            self.assertFalse(may(name(key_name), N, name("example.com.")), key_name)

    def test_operation_label_alone_counts(self) -> None:
        # OCaml-DNS accepts it, so a repository written for it keeps working.
        self.assertTrue(may(name("_transfer.example.com."), T, name("example.com.")))

    def test_relative_names_are_refused(self) -> None:
        relative = dns.name.from_text("k._update.example", origin=None)
        self.assertRaises(ValueError, may, relative, U, name("example."))
        self.assertRaises(ValueError, may, name("k._update.example."), U, relative)


class KeyRoleTests(SynchronousTestCase):
    def test_addresses(self) -> None:
        cases = {
            # key name: (operation, zone, primary, secondary)
            "1.2.3.4.5.6.7.8._transfer.z.": (T, "z.", "1.2.3.4", "5.6.7.8"),
            "10.0.42.2.10.0.42.3._transfer.mirage.": (T, "mirage.", "10.0.42.2", "10.0.42.3"),
            "1.2.3.4.5.6.7.8._transfer.": (T, ".", "1.2.3.4", "5.6.7.8"),
            "10.0.0.1.10.0.0.2._update.z.": (U, "z.", "10.0.0.1", "10.0.0.2"),
            "x.1.2.3.4._transfer.z.": (T, "z.", "1.2.3.4", None),
            "1.2.3.4._transfer.z.": (T, "z.", "1.2.3.4", None),
            "x.1.2.3.4._update.": (U, ".", "1.2.3.4", None),
            # The nearest eight octet labels count, as in OCaml-DNS.
            "9.1.2.3.4.5.6.7.8._transfer.z.": (T, "z.", "1.2.3.4", "5.6.7.8"),
            "ns.1.2.3.4.5.6.7.8._transfer.z.": (T, "z.", "1.2.3.4", "5.6.7.8"),
            # Decimal with leading zeros, never octal.
            "010.0.0.1._transfer.z.": (T, "z.", "10.0.0.1", None),
            # Ambiguous counts of octet labels: no address.
            "1.2.3.4.5._transfer.z.": (T, "z.", None, None),
            "2.3.4.5.6.7.8._transfer.z.": (T, "z.", None, None),
            "1.2.3._transfer.z.": (T, "z.", None, None),
            "256.1.1.1._transfer.z.": (T, "z.", None, None),
            "x.1.2.3.256._transfer.z.": (T, "z.", None, None),
            "1.2.3.-4._transfer.z.": (T, "z.", None, None),
            "1.2.3.0004._transfer.z.": (T, "z.", None, None),
            "a.b.c.d._transfer.z.": (T, "z.", None, None),
            "personal._transfer.z.": (T, "z.", None, None),
            # Addresses belong to secondaries: _notify keys carry none.
            "1.2.3.4._notify.z.": (N, "z.", None, None),
            "1.2.3.4.5.6.7.8._notify.z.": (N, "z.", None, None),
            # Labels left of the rightmost operation label are just labels.
            "1.2.3.4._transfer.5.6.7.8._transfer.z.": (T, "z.", "5.6.7.8", None),
        }
        wrong = []
        for key_name, (operation, zone, primary, secondary) in cases.items():
            expected = KeyRole(
                operation,
                name(zone),
                ip(primary) if primary else None,
                ip(secondary) if secondary else None,
            )
            role = key_role(name(key_name))
            if role != expected:
                wrong.append((key_name, role, expected))
        self.assertEqual(wrong, [])

    def test_key_role_property(self) -> None:
        key = Key(name("10.0.42.2.10.0.42.3._transfer.mirage."), dns.tsig.HMAC_SHA256, SECRET)
        self.assertEqual(key.role, KeyRole(T, name("mirage."), ip("10.0.42.2"), ip("10.0.42.3")))
        self.assertIsNone(Key(name("plain.mirage."), dns.tsig.HMAC_SHA256, SECRET).role)


class KeyTests(SynchronousTestCase):
    def test_repr_and_str_hide_the_secret(self) -> None:
        key = Key(name("personal._update.mirage."), dns.tsig.HMAC_SHA256, SECRET)
        shown = [repr(key), str(key), repr(key.tsig_key()), str(key.tsig_key())]
        load = load_keys(
            {"_keys": f"personal._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}".encode()}
        )
        shown += [repr(load), str(load), repr(load.tsig_keyring())]
        shown.append(repr(format_new_key("k._update.mirage", secret=SECRET)))
        for text in shown:
            self.assertNotIn(SECRET_TEXT, text)
            self.assertNotIn(repr(SECRET), text)
        self.assertEqual(
            repr(key),
            "Key(name='personal._update.mirage.', algorithm='hmac-sha256.', secret=<elided>)",
        )

    def test_key_validation(self) -> None:
        self.assertRaises(ValueError, Key, name("k._update.z."), dns.tsig.HMAC_MD5, SECRET)
        self.assertRaises(ValueError, Key, name("k._update.z."), dns.tsig.HMAC_SHA256, b"")
        relative = dns.name.from_text("k._update.z", origin=None)
        self.assertRaises(ValueError, Key, relative, dns.tsig.HMAC_SHA256, SECRET)

    def test_keyring_verifies_a_signed_message(self) -> None:
        key = Key(name("personal._update.mirage."), dns.tsig.HMAC_SHA256, SECRET)
        query = dns.message.make_query("mirage.", "SOA")
        query.use_tsig(key.tsig_key())
        # Looked up by the name on the wire, whatever its case.
        keyring = tsig_keyring([Key(name("PERSONAL._update.Mirage."), key.algorithm, SECRET)])
        received = dns.message.from_wire(query.to_wire(), keyring=keyring)
        self.assertTrue(received.had_tsig)
        self.assertEqual(received.keyname, key.name)

    def test_algorithms(self) -> None:
        cases = {
            "SHA1": dns.tsig.HMAC_SHA1,
            "sha224": dns.tsig.HMAC_SHA224,
            "SHA256": dns.tsig.HMAC_SHA256,
            "hmac-sha384": dns.tsig.HMAC_SHA384,
            "HMAC-SHA512.": dns.tsig.HMAC_SHA512,
            "161": dns.tsig.HMAC_SHA1,
            "163": dns.tsig.HMAC_SHA256,
            "165": dns.tsig.HMAC_SHA512,
        }
        for text, expected in cases.items():
            self.assertEqual(algorithm_from_text(text), expected, text)
        for text in ["MD5", "hmac-md5", "157", "166", "160", "8", "sha3", ""]:
            self.assertRaises(ValueError, algorithm_from_text, text)
        sizes = [secret_size(algorithm_from_text(f"{n}")) for n in range(161, 166)]
        self.assertEqual(sizes, [20, 28, 32, 48, 64])


class ParseKeyArgumentTests(SynchronousTestCase):
    def test_good(self) -> None:
        cases = {
            f"personal._update.mirage:SHA256:{SECRET_TEXT}": (
                "personal._update.mirage.",
                dns.tsig.HMAC_SHA256,
            ),
            f"personal._update.mirage.:hmac-sha512:{SECRET_TEXT}": (
                "personal._update.mirage.",
                dns.tsig.HMAC_SHA512,
            ),
            f"10.0.42.2.10.0.42.3._transfer.mirage:161:{SECRET_TEXT}": (
                "10.0.42.2.10.0.42.3._transfer.mirage.",
                dns.tsig.HMAC_SHA1,
            ),
            f"x._transfer.:SHA384:{SECRET_TEXT}": ("x._transfer.", dns.tsig.HMAC_SHA384),
        }
        for text, (key_name, algorithm) in cases.items():
            self.assertEqual(parse_key_argument(text), Key(name(key_name), algorithm, SECRET))

    def test_bad(self) -> None:
        cases = {
            SECRET_TEXT: "a key must be given as NAME:ALG:BASE64",
            f"SHA256:{SECRET_TEXT}": "a key must be given as NAME:ALG:BASE64",
            f":SHA256:{SECRET_TEXT}": "a key must be given as NAME:ALG:BASE64",
            f"k._update.mirage:MD5:{SECRET_TEXT}": "HMAC-MD5 is refused",
            f"k._update.mirage:157:{SECRET_TEXT}": "HMAC-MD5 is refused",
            f"k._update.mirage:SHA3:{SECRET_TEXT}": "unknown TSIG algorithm 'SHA3'",
            f"k._update.mirage:SHA256:{SECRET_TEXT[:-2]}": "is not valid base64",
            f"k._update.mirage:SHA256:{SECRET_TEXT}!": "is not valid base64",
            "k._update.mirage:SHA256:": "the secret of key k._update.mirage. is empty",
            f"{'a' * 64}._update.mirage:SHA256:{SECRET_TEXT}": "is not a domain name",
        }
        for text, fragment in cases.items():
            error = self.assertRaises(ValueError, parse_key_argument, text)
            self.assertIn(fragment, str(error), text)
            self.assertNotIn(SECRET_TEXT[:20], str(error), text)


class FormatNewKeyTests(SynchronousTestCase):
    def test_seed_example(self) -> None:
        new = format_new_key("personal._update.mirage", "SHA256", secret=SECRET)
        self.assertEqual(new.dnskey_line, f"personal._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}")
        self.assertEqual(new.argument, f"personal._update.mirage:SHA256:{SECRET_TEXT}")
        self.assertEqual(
            new.bind_clause,
            'key "personal._update.mirage" {\n'
            "\talgorithm hmac-sha256;\n"
            f'\tsecret "{SECRET_TEXT}";\n'
            "};",
        )
        self.assertEqual(str(new), "\n".join([new.dnskey_line, new.argument, new.bind_clause]))

    def test_every_form_parses_back(self) -> None:
        for algorithm in ["hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]:
            size = secret_size(algorithm_from_text(algorithm))
            secret = bytes(range(1, size + 1))
            new = format_new_key("laptop._update.example.com.", algorithm, secret=secret)
            expected = Key(
                name("laptop._update.example.com."), algorithm_from_text(algorithm), secret
            )
            load = load_keys({"example.com._keys": new.dnskey_line.encode()})
            self.assertEqual(load.warnings, [])
            self.assertEqual(dict(load.keyring), {expected.name: expected})
            self.assertEqual(parse_key_argument(new.argument), expected)
            self.assertIn(f"algorithm {algorithm};", new.bind_clause)

    def test_refuses_useless_or_bad_keys(self) -> None:
        self.assertRaises(ValueError, format_new_key, "laptop.example.com", secret=SECRET)
        self.assertRaises(ValueError, format_new_key, "k._update.z", "hmac-md5", secret=SECRET)
        self.assertRaises(ValueError, format_new_key, "k._update.z", secret=b"")
        self.assertRaises(ValueError, format_new_key, "k..z", secret=SECRET)


class KeyFileNameTests(SynchronousTestCase):
    def test_is_key_file(self) -> None:
        cases = {
            "_keys": True,
            "mirage._keys": True,
            "example.com._keys": True,
            "Mirage._KEYS": True,
            "mirage": False,
            "example.com": False,
            "mirage_keys": False,
            "_keys.mirage": False,
            "x_keys": False,
        }
        for file_name, expected in cases.items():
            self.assertEqual(is_key_file(file_name), expected, file_name)

    def test_domain(self) -> None:
        self.assertEqual(key_file_domain("_keys"), dns.name.root)
        self.assertEqual(key_file_domain("example.com._keys"), name("example.com."))
        for bad in ["mirage", "._keys", "a..b._keys"]:
            self.assertRaises(ValueError, key_file_domain, bad)


def load(files: dict[str, str]) -> KeyLoad:
    return load_keys({file: text.encode() for file, text in files.items()})


class LoadKeysTests(SynchronousTestCase):
    def assertKeys(self, loaded: KeyLoad, expected: dict[str, tuple[dns.name.Name, bytes]]) -> None:
        self.assertEqual(
            dict(loaded.keyring),
            {name(n): Key(name(n), alg, secret) for n, (alg, secret) in expected.items()},
        )

    def test_master_file_syntax(self) -> None:
        loaded = load(
            {
                "mirage._keys": (
                    "; keys for mirage\n"
                    f"personal._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    "$TTL 3600\n"
                    f"a._transfer 3600 IN DNSKEY 0 3 161 {OTHER_TEXT} ; relative to mirage.\n"
                    f"b._notify IN 60 DNSKEY 0 3 162 {OTHER_TEXT}\n"
                    "$ORIGIN sub.mirage.\n"
                    f"c._update DNSKEY 0 3 164 ( {SECRET_TEXT[:20]}\n"
                    f"    {SECRET_TEXT[20:]} ) ; split over lines\n"
                    f"@ DNSKEY 512 3 165 {SECRET_TEXT}\n"
                    "   ; an indented comment\n"
                    "\n"
                ),
                "_keys": f"x._transfer. DNSKEY 0 3 163 {SECRET_TEXT}",
            }
        )
        self.assertEqual(
            loaded.warnings,
            [
                "mirage._keys:9: sub.mirage. has no _update, _transfer or _notify label: "
                "it grants nothing"
            ],
        )
        self.assertKeys(
            loaded,
            {
                "personal._update.mirage.": (dns.tsig.HMAC_SHA256, SECRET),
                "a._transfer.mirage.": (dns.tsig.HMAC_SHA1, OTHER),
                "b._notify.mirage.": (dns.tsig.HMAC_SHA224, OTHER),
                "c._update.sub.mirage.": (dns.tsig.HMAC_SHA384, SECRET),
                "sub.mirage.": (dns.tsig.HMAC_SHA512, SECRET),
                "x._transfer.": (dns.tsig.HMAC_SHA256, SECRET),
            },
        )
        self.assertEqual(
            [(k.file, k.line) for k in loaded.by_file["mirage._keys"]],
            [
                ("mirage._keys", 2),
                ("mirage._keys", 4),
                ("mirage._keys", 5),
                ("mirage._keys", 7),
                ("mirage._keys", 9),
            ],
        )

    def test_bad_lines_are_warnings_and_the_rest_loads(self) -> None:
        lines = [
            f"good1._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}",  # 1
            f"md5._update.mirage. DNSKEY 0 3 157 {SECRET_TEXT}",  # 2
            f"dnssec._update.mirage. DNSKEY 257 3 8 {SECRET_TEXT}",  # 3
            "nosecret._update.mirage. DNSKEY 0 3 163",  # 4
            f"    {SECRET_TEXT}",  # 5: continuation without parentheses
            "badb64._update.mirage. DNSKEY 0 3 163 !!!!",  # 6
            "www A 192.0.2.1",  # 7
            f"out._update.example. DNSKEY 0 3 163 {SECRET_TEXT}",  # 8
            "$INCLUDE /etc/gitdns/secret",  # 9
            f"chaos._update.mirage. CH DNSKEY 0 3 163 {SECRET_TEXT}",  # 10
            f"alg._update.mirage. DNSKEY 0 3 HMAC-SHA256 {SECRET_TEXT}",  # 11
            f"stray._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT} )",  # 12
            f"good2._notify DNSKEY 0 3 163 {SECRET_TEXT}",  # 13
            f"bad..name DNSKEY 0 3 163 {SECRET_TEXT}",  # 14
            f"paren._update.mirage. DNSKEY 0 3 163 ( {SECRET_TEXT}",  # 15: never closed
            f'quoted._update.mirage. DNSKEY 0 3 163 "{SECRET_TEXT}"',  # 16
            "$GENERATE 1-2 x$ A 1.2.3.4",  # 17
            "$ORIGIN",  # 18
            f"ttl._update.mirage. 1x DNSKEY 0 3 163 {SECRET_TEXT}",  # 19
            f"flags._update.mirage. DNSKEY 65536 3 163 {SECRET_TEXT}",  # 20
            f"good3._transfer.mirage. DNSKEY 0 3 165 {OTHER_TEXT}",  # 21
        ]
        loaded = load({"mirage._keys": "\n".join(lines) + "\n"})
        expected = [
            "mirage._keys:2: algorithm 157 (HMAC-MD5) is refused for TSIG; ignored",
            "mirage._keys:3: algorithm 8 is not a TSIG HMAC algorithm "
            "(161 (SHA1) to 165 (SHA512)); ignored",
            "mirage._keys:4: DNSKEY without key material",
            "mirage._keys:5: expected a record type (DNSKEY)",
            "mirage._keys:6: key material is not valid base64",
            "mirage._keys:7: A record ignored: key files hold only DNSKEY records",
            "mirage._keys:8: out._update.example. is outside mirage., "
            "the domain of this key file; ignored",
            "mirage._keys:9: $INCLUDE is not allowed in key files; ignored",
            "mirage._keys:10: only class IN is supported",
            "mirage._keys:11: DNSKEY algorithm must be a number",
            "mirage._keys:12: syntax error: Text input is malformed.",
            "mirage._keys:14: bad owner name: A DNS label is empty.",
            # The lines after an unclosed "(" are still read on their own.
            "mirage._keys:15: unbalanced parentheses; record ignored",
            "mirage._keys:16: key material must be base64",
            "mirage._keys:17: $GENERATE is not supported in key files; ignored",
            "mirage._keys:18: expected $ORIGIN name",
            "mirage._keys:19: bad TTL",
            "mirage._keys:20: DNSKEY flags 65536 is out of range",
        ]
        self.assertEqual(loaded.warnings, expected)
        self.assertKeys(
            loaded,
            {
                "good1._update.mirage.": (dns.tsig.HMAC_SHA256, SECRET),
                "good2._notify.mirage.": (dns.tsig.HMAC_SHA256, SECRET),
                "good3._transfer.mirage.": (dns.tsig.HMAC_SHA512, OTHER),
            },
        )
        for warning in loaded.warnings:
            self.assertNotIn(SECRET_TEXT[:20], warning)
            self.assertNotIn(SECRET_TEXT[20:], warning)

    def test_key_outside_the_file_domain(self) -> None:
        loaded = load(
            {
                "example.com._keys": (
                    f"k._update.example.com. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"k._update.sub.example.com. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"k._update.com. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"k._update.badexample.com. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"k._update. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                ),
                # Inside the domain `_transfer.` by name, but granting for the root.
                "_transfer._keys": f"x._transfer. DNSKEY 0 3 163 {SECRET_TEXT}\n",
                "_keys": f"anything._update.example.org. DNSKEY 0 3 163 {OTHER_TEXT}\n",
            }
        )
        self.assertEqual(
            loaded.warnings,
            [
                "_transfer._keys:1: x._transfer. grants access to ., outside _transfer., "
                "the domain of this key file; ignored",
                "example.com._keys:3: k._update.com. is outside example.com., "
                "the domain of this key file; ignored",
                "example.com._keys:4: k._update.badexample.com. is outside example.com., "
                "the domain of this key file; ignored",
                "example.com._keys:5: k._update. is outside example.com., "
                "the domain of this key file; ignored",
            ],
        )
        self.assertKeys(
            loaded,
            {
                "k._update.example.com.": (dns.tsig.HMAC_SHA256, SECRET),
                "k._update.sub.example.com.": (dns.tsig.HMAC_SHA256, SECRET),
                "anything._update.example.org.": (dns.tsig.HMAC_SHA256, OTHER),
            },
        )

    def test_more_than_one_dnskey_per_name(self) -> None:
        loaded = load(
            {
                "mirage._keys": (
                    f"twice._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"other._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"TWICE._update.mirage. DNSKEY 0 3 163 {OTHER_TEXT}\n"
                    f"same._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"same._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                    f"across._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n"
                ),
                "_keys": f"across._update.mirage. DNSKEY 0 3 164 {SECRET_TEXT}\n",
            }
        )
        self.assertEqual(
            loaded.warnings,
            [
                "_keys:1: across._update.mirage. has more than one DNSKEY "
                "(also mirage._keys:6); all its keys are ignored",
                "mirage._keys:1: twice._update.mirage. has more than one DNSKEY "
                "(also mirage._keys:3); all its keys are ignored",
                "mirage._keys:3: TWICE._update.mirage. has more than one DNSKEY "
                "(also mirage._keys:1); all its keys are ignored",
                "mirage._keys:5: same._update.mirage. repeats the DNSKEY of mirage._keys:4",
                "mirage._keys:6: across._update.mirage. has more than one DNSKEY "
                "(also _keys:1); all its keys are ignored",
            ],
        )
        self.assertKeys(
            loaded,
            {
                "other._update.mirage.": (dns.tsig.HMAC_SHA256, SECRET),
                "same._update.mirage.": (dns.tsig.HMAC_SHA256, SECRET),
            },
        )

    def test_unreadable_file_keeps_its_previous_keys(self) -> None:
        first = load(
            {
                "mirage._keys": f"k._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\n",
                "_keys": f"r._transfer. DNSKEY 0 3 163 {OTHER_TEXT}\n",
            }
        )
        self.assertEqual(first.warnings, [])
        files = {
            "mirage._keys": b"k._update.mirage. DNSKEY 0 3 163 AAAA\n\xff\xfe broken\n",
            "_keys": f"r2._transfer. DNSKEY 0 3 163 {OTHER_TEXT}\n".encode(),
            "new._keys": b"\xff",
        }
        second = load_keys(files, previous=first)
        self.assertEqual(
            second.warnings,
            [
                "mirage._keys:2: not valid UTF-8; kept the 1 key(s) of its last good version",
                "new._keys:1: not valid UTF-8; no keys loaded from it",
            ],
        )
        self.assertKeys(
            second,
            {
                "k._update.mirage.": (dns.tsig.HMAC_SHA256, SECRET),
                "r2._transfer.": (dns.tsig.HMAC_SHA256, OTHER),
            },
        )
        # Kept again by a third load that still cannot read the file.
        third = load_keys(files, previous=second)
        self.assertEqual(third.keyring, second.keyring)
        # Without a previous load nothing is kept.
        self.assertNotIn(name("k._update.mirage."), load_keys(files).keyring)

    def test_file_names(self) -> None:
        loaded = load_keys(
            {
                "mirage": b"this is a zone, not keys",
                "a..b._keys": f"k._update.a..b. DNSKEY 0 3 163 {SECRET_TEXT}".encode(),
                "._keys": f"k._update. DNSKEY 0 3 163 {SECRET_TEXT}".encode(),
                "Mirage._KEYS": f"k._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}".encode(),
            }
        )
        self.assertEqual(
            loaded.warnings,
            [
                "._keys:1: ._keys does not name a domain; no keys loaded from it",
                "a..b._keys:1: a..b._keys does not name a domain: A DNS label is empty.; "
                "no keys loaded from it",
            ],
        )
        self.assertKeys(loaded, {"k._update.mirage.": (dns.tsig.HMAC_SHA256, SECRET)})

    def test_line_endings_and_byte_order_mark(self) -> None:
        loaded = load_keys(
            {
                "mirage._keys": (
                    "\ufeff; comment\r\n"
                    f"a._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}\r\n"
                    "bad\r\n"
                    f"b._update.mirage. DNSKEY 0 3 163 {SECRET_TEXT}"
                ).encode()
            }
        )
        self.assertEqual(loaded.warnings, ["mirage._keys:3: expected a record type"])
        self.assertEqual(
            sorted(loaded.keyring), [name("a._update.mirage."), name("b._update.mirage.")]
        )

    def test_no_files(self) -> None:
        loaded = load_keys({})
        self.assertEqual((dict(loaded.keyring), loaded.warnings), ({}, []))
        self.assertEqual(loaded.tsig_keyring(), {})
