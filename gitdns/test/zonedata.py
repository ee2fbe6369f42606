"""Zones shared by the unit tests."""

from __future__ import annotations

from gitdns.zones import SourceFile, ZoneSet, load_zoneset

EXAMPLE = """\
$ORIGIN example.
$TTL 3600
@       SOA   ns1 hostmaster 2024010101 7200 3600 1209600 300
@       NS    ns1
@       NS    ns2.other.
@       MX    10 mail
@       A     192.0.2.1
ns1     A     192.0.2.53
ns1     AAAA  2001:db8::53
mail    A     192.0.2.25
_sip._udp SRV 0 5 5060 sip
sip     A     192.0.2.60
www     CNAME chain1
chain1  CNAME chain2
chain2  A     192.0.2.80
dangling CNAME nowhere
away    CNAME www.nested.example.
outside CNAME www.example.net.
loop1   CNAME loop2
loop2   CNAME loop1
*.wild  A     192.0.2.99
*.wild  TXT   "wild"
host.wild A   192.0.2.100
*.cname CNAME chain2
a.b.c   A     192.0.2.3
sub     NS    ns.sub
sub     NS    ns.elsewhere.
sub     DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub  A     192.0.2.54
MixedCase A   192.0.2.7
"""

NESTED = """\
$ORIGIN nested.example.
$TTL 600
@   SOA ns1.example. hostmaster.example. 7 3600 600 86400 60
@   NS  ns1.example.
www A   192.0.2.200
"""

ORG = """\
$ORIGIN example.org.
@   3600 SOA ns hostmaster 1 3600 600 86400 120
@   3600 NS  ns
ns  3600 A   198.51.100.1
"""


def zoneset(**files: str) -> ZoneSet:
    """A ZoneSet from file name -> text; the defaults when none are given."""
    files = files or {"example": EXAMPLE, "nested.example": NESTED, "example.org": ORG}
    sources = [
        SourceFile(name, f"blob-{name}-{hash(text)}", text.encode()) for name, text in files.items()
    ]
    result = load_zoneset(sources)
    assert not result.errors, result.errors
    return result.zoneset
