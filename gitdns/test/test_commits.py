"""What a commit's trailer keeps of an UPDATE: the request as it was before signing."""

from __future__ import annotations

import base64

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig
import dns.update
from twisted.trial.unittest import SynchronousTestCase

from gitdns.commits import unsigned_wire

SECRET = base64.b64decode("kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=")


def update(keyname: str) -> dns.update.UpdateMessage:
    key = dns.tsig.Key(keyname, SECRET, dns.tsig.HMAC_SHA256)
    message = dns.update.UpdateMessage("example.", keyring={key.name: key}, keyname=key.name)
    message.present("www", "A")
    message.absent("nothere")
    message.delete("old", "A", "192.0.2.1")
    message.add("new", 300, "A", "192.0.2.2")
    message.add("new", 300, "TXT", "one", "two")
    message.add("mail.example.", 300, "MX", "10 new")
    message.use_edns(0)
    return message


class UnsignedWireTests(SynchronousTestCase):
    def test_the_bytes_the_mac_was_made_over(self) -> None:
        # The key name under the zone (dnspython compresses it) and elsewhere.
        for keyname in ("ops._update.example.", "KEY.elsewhere."):
            signed = update(keyname)
            wire = signed.to_wire()
            parsed = dns.message.from_wire(wire, keyring=False)
            unsigned = unsigned_wire(wire, parsed)
            # Signing these bytes again gives the request's MAC: they are what was signed.
            rdata = parsed.tsig[0]
            key = dns.tsig.Key(keyname, SECRET, dns.tsig.HMAC_SHA256)
            template = rdata.replace(mac=b"")
            remade, _ = dns.tsig.sign(unsigned, key, template, rdata.time_signed)
            self.assertEqual(remade.mac, rdata.mac)
            again = dns.message.from_wire(unsigned)
            self.assertIsNone(again.tsig)
            self.assertEqual(again.sections, parsed.sections)
            self.assertEqual(again.id, rdata.original_id)

    def test_unsigned_request_is_kept_as_it_is(self) -> None:
        message = dns.update.UpdateMessage("example.")
        message.add("new", 300, "A", "192.0.2.2")
        wire = message.to_wire()
        self.assertEqual(unsigned_wire(wire, dns.message.from_wire(wire)), wire)
