"""Differential test: the same zone served by BIND ``named`` and by gitdns must give
the same answers, section by section.

Comparison rules (what the RFCs fix, not what one implementation happens to do):
- header: rcode, opcode and the QR/AA/TC/RD/RA/AD/CD flags;
- question: exact, including the case of the query name (RFC 1034 4.1.1 / the
  0x20 case-echo that resolvers rely on);
- answer/authority/additional: as multisets of single RRs (order-insensitive within
  a section), TTLs included.  Owner names and domain names inside rdata compare
  case-insensitively: with name compression a server may legitimately point an
  owner or an rdata name at the (mixed-case) question name, so their case is not
  fixed (RFC 4343 section 4 only asks to preserve case "where possible");
- EDNS: whether the response carries an OPT record and its version (RFC 6891:
  an OPT in the query requires one in the response); the advertised payload size
  and options (BIND adds a COOKIE) are each server's choice;
- ANY: RFC 8482 lets a server answer with a subset of the RRsets (or a synthesized
  HINFO), so the subject's answer must be non-empty and drawn from BIND's full answer
  (or be one HINFO RRset); authority/additional are not compared for ANY;
- a truncated response (TC=1 in either): only TC, rcode, AA and the question are
  compared, and the response must parse.  Which RRsets a server keeps in a truncated
  UDP answer is left open by RFC 2181 section 9 / RFC 1035 (BIND sends an empty
  answer section), so it is not compared.

Environment:
- GITDNS_DIFF_SUBJECT=nsd compares NSD (instead of gitdns) against BIND; this checks
  the harness itself. NSD differs from BIND in a few places the RFCs leave open, so
  some failures are expected there.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from tests.conftest import Servers, require_named
from tests.peers import Gitdns, Named, Nsd, Server, which

ZONE = r"""$ORIGIN example.
$TTL 3600
; SOA TTL 3600, MINIMUM 300: a negative answer's SOA has TTL min(3600, 300) (RFC 2308 3)
@            IN SOA  ns1.example. hostmaster.example. 2024010101 7200 3600 1209600 300
@               NS   ns1
@               NS   ns2.example.
@               A    192.0.2.1
@               AAAA 2001:db8::1
@               MX   10 mail
@               MX   20 mx2
@           600 TXT  "v=spf1 -all"
ns1             A    192.0.2.53
ns1             AAAA 2001:db8::53
ns2             A    192.0.2.54
ns2             AAAA 2001:db8::54
www         300 A    192.0.2.80
www             A    192.0.2.81
www             AAAA 2001:db8::80
mail            A    192.0.2.25
mail            AAAA 2001:db8::25
mx2             A    192.0.2.26
_sip._tcp       SRV  10 60 5060 sip
_sip._tcp       SRV  20 0 5060 sip2.example.
sip             A    192.0.2.60
sip2            AAAA 2001:db8::61
; CNAME chain of length 3 ending at an A record
chain1          CNAME chain2
chain2      120 CNAME chain3
chain3          CNAME www
; CNAME whose target does not exist in the zone
dangling        CNAME nowhere
; wildcard, and an existing name below it that blocks it
*.wild          A    192.0.2.99
*.wild          TXT  "wildcard" "match"
host.wild       A    192.0.2.98
; a.b.c exists: b.c and c are empty non-terminals
a.b.c           A    192.0.2.3
; delegation with in-bailiwick name servers and glue
sub             NS   ns1.sub
sub             NS   ns2.sub.example.
ns1.sub         A    192.0.2.201
ns2.sub         A    192.0.2.202
ns2.sub         AAAA 2001:db8::202
; mixed-case owner names
MiXeD           A    192.0.2.7
UPPER.Case      TXT  "mixed case owner"
; long TXT RRset (> 1232 octets): truncated over UDP
""" + "".join(
    # 7 TXT records of 3 strings of ~70 octets each: about 1500 octets of rdata
    f'big TXT "{i} {chr(97 + 3 * i) * 70}" "{chr(98 + 3 * i) * 72}" "{chr(99 + 3 * i) * 71}"\n'
    for i in range(7)
)

# (query name, type, why); the query name's case is sent as written.
QUERIES: list[tuple[str, str, str]] = [
    ("example.", "SOA", "apex SOA"),
    ("example.", "NS", "apex NS, additional A/AAAA of in-zone name servers"),
    ("example.", "A", "apex A"),
    ("example.", "MX", "MX, additional A/AAAA of the exchanges"),
    ("example.", "TXT", "TXT with its own TTL"),
    ("example.", "ANY", "ANY at the apex"),
    ("example.", "CAA", "NODATA at the apex"),
    ("www.example.", "A", "RRset whose first RR has a smaller TTL in the file"),
    ("www.example.", "AAAA", "AAAA"),
    ("www.example.", "MX", "NODATA"),
    ("nonexistent.example.", "A", "NXDOMAIN"),
    ("deep.below.nonexistent.example.", "TXT", "NXDOMAIN several labels down"),
    ("_sip._tcp.example.", "SRV", "SRV, additional addresses of the targets"),
    ("ns1.example.", "A", "name server address"),
    ("ns2.example.", "AAAA", "name server address"),
    ("chain1.example.", "A", "CNAME chain of 3 to an A"),
    ("chain2.example.", "AAAA", "CNAME chain of 2 to an AAAA"),
    ("chain1.example.", "CNAME", "CNAME queried for itself: not followed"),
    ("chain1.example.", "MX", "CNAME chain ending in NODATA"),
    ("dangling.example.", "A", "CNAME to a name missing from the zone: NXDOMAIN (RFC 6604)"),
    ("foo.wild.example.", "A", "wildcard A"),
    ("foo.wild.example.", "TXT", "wildcard TXT"),
    ("foo.wild.example.", "MX", "wildcard NODATA"),
    ("x.y.wild.example.", "A", "wildcard matching several labels"),
    ("wild.example.", "A", "parent of the wildcard: empty non-terminal"),
    ("*.wild.example.", "TXT", "the wildcard queried literally"),
    ("host.wild.example.", "A", "existing name below the wildcard"),
    ("host.wild.example.", "TXT", "existing name blocks the wildcard: NODATA"),
    ("below.host.wild.example.", "A", "below a blocking name: NXDOMAIN"),
    ("b.c.example.", "A", "empty non-terminal"),
    ("c.example.", "TXT", "empty non-terminal, two levels"),
    ("a.b.c.example.", "A", "name below empty non-terminals"),
    ("x.b.c.example.", "A", "NXDOMAIN below an empty non-terminal"),
    ("sub.example.", "NS", "delegation point: referral"),
    ("sub.example.", "A", "delegation point, other type: referral"),
    ("www.sub.example.", "A", "below the delegation: referral with glue"),
    ("ns1.sub.example.", "A", "glue name: referral, glue is not authoritative"),
    ("ns2.sub.example.", "AAAA", "glue name: referral"),
    ("sub.example.", "DS", "DS at the delegation: parent answers (RFC 4035 3.1.4.1)"),
    ("big.example.", "TXT", "> 1232 octets: TC over UDP, complete over TCP"),
    ("mIxEd.example.", "A", "mixed-case owner, mixed-case query"),
    ("MIXED.EXAMPLE.", "A", "mixed-case owner, upper-case query"),
    ("upper.case.example.", "TXT", "mixed-case owner, lower-case query"),
    ("WwW.ExAmPlE.", "MX", "mixed-case NODATA: SOA in authority"),
    ("NoSuch.Example.", "A", "mixed-case NXDOMAIN"),
    ("www.not-served.", "A", "outside every zone: REFUSED"),
]

# transport name -> (tcp?, EDNS version or -1, payload)
TRANSPORTS: dict[str, tuple[bool, int, int]] = {
    "udp-edns1232": (False, 0, 1232),
    "udp-noedns": (False, -1, 0),
    "tcp": (True, 0, 1232),
}

# The truncating query must really truncate over UDP, or the test proves nothing.
MUST_TRUNCATE = {("big.example.", "TXT", "udp-edns1232"), ("big.example.", "TXT", "udp-noedns")}

TIMEOUT = 3.0


def _subject_kind() -> str:
    return os.environ.get("GITDNS_DIFF_SUBJECT", "gitdns")


@dataclass
class Pair:
    reference: Server
    subject: Server


@pytest.fixture(scope="module")
def pair(module_servers: Servers) -> Iterator[Pair]:
    require_named()
    kind = _subject_kind()
    if kind == "nsd":
        if which("nsd") is None:
            pytest.fail("nsd is not installed: run scripts/setup.sh")
        subject: Server = Nsd({"example.": ZONE}, options=["minimal-responses: yes"])
    else:
        subject = Gitdns({"example": ZONE})
    reference = module_servers(Named({"example.": ZONE}))
    module_servers(subject)
    yield Pair(reference, subject)


def ask(server: Server, qname: str, qtype: str, transport: str) -> dns.message.Message:
    tcp, edns, payload = TRANSPORTS[transport]
    q = dns.message.make_query(qname, qtype, use_edns=edns, payload=payload or None)
    q.flags &= ~dns.flags.RD  # RD clear, as a resolver talking to an authority
    if tcp:
        return dns.query.tcp(
            q, server.host, port=server.port, timeout=TIMEOUT, one_rr_per_rrset=True
        )
    return dns.query.udp(q, server.host, port=server.port, timeout=TIMEOUT, one_rr_per_rrset=True)


FLAGS = [
    ("QR", dns.flags.QR),
    ("AA", dns.flags.AA),
    ("TC", dns.flags.TC),
    ("RD", dns.flags.RD),
    ("RA", dns.flags.RA),
    ("AD", dns.flags.AD),
    ("CD", dns.flags.CD),
]


def _rr_lines(section: list[dns.rrset.RRset]) -> list[str]:
    lines = []
    for rrset in section:
        for rd in rrset:
            # canonical (lower-cased) domain names inside rdata; text for display
            canon = dns.rdata.from_wire(
                rd.rdclass, rd.rdtype, rd.to_digestable(), 0, len(rd.to_digestable())
            )
            lines.append(
                f"{rrset.name.to_text().lower()} {rrset.ttl}"
                f" {dns.rdataclass.to_text(rrset.rdclass)}"
                f" {dns.rdatatype.to_text(rrset.rdtype)} {canon.to_text()}"
            )
    return sorted(lines)


def normalize(m: dns.message.Message) -> list[str]:
    """The comparable content of a response as lines (see module docstring)."""
    flags = " ".join(n for n, f in FLAGS if m.flags & f)
    out = [
        f"opcode {dns.opcode.to_text(m.opcode())}",
        f"rcode {dns.rcode.to_text(m.rcode())}",
        f"flags {flags}",
        f"edns {m.edns}",
    ]
    out += [
        f"question {q.name.to_text()} {dns.rdataclass.to_text(q.rdclass)}"
        f" {dns.rdatatype.to_text(q.rdtype)}"
        for q in m.question
    ]
    if m.flags & dns.flags.TC:
        keep = {"rcode", "flags", "question"}
        flags = " ".join(n for n, f in FLAGS if m.flags & f and n in ("TC", "AA"))
        out = [
            line if not line.startswith("flags") else f"flags {flags}"
            for line in out
            if line.split(" ", 1)[0] in keep
        ]
        return [*out, "(truncated: sections not compared)"]
    for title, section in (
        ("answer", m.answer),
        ("authority", m.authority),
        ("additional", m.additional),
    ):
        out += [f"{title}: {line}" for line in _rr_lines(section)]
    return out


def _any_view(ref_n: list[str], got_n: list[str]) -> tuple[list[str], list[str]]:
    """RFC 8482: the subject may return a non-empty subset of the RRsets (whole RRsets)
    or a single synthesized HINFO RRset. Returns views that are equal when it did."""
    head = [line for line in ref_n if not line.startswith(("answer", "authority", "additional"))]
    ref_ans = [line for line in ref_n if line.startswith("answer")]
    got_ans = [line for line in got_n if line.startswith("answer")]

    def rrset_key(line: str) -> tuple[str, str]:
        f = line.split()
        return (f[1], f[4])  # owner, type

    got_keys = {rrset_key(line) for line in got_ans}
    hinfo = bool(got_ans) and all(k[1] == "HINFO" for k in got_keys) and len(got_keys) == 1
    if hinfo:
        return head, [
            line for line in got_n if not line.startswith(("answer", "authority", "additional"))
        ]
    subset = [line for line in ref_ans if rrset_key(line) in got_keys]
    if not got_ans:
        subset = ["answer: (non-empty)"]
    got_view = [
        line for line in got_n if not line.startswith(("answer", "authority", "additional"))
    ]
    return head + subset, got_view + got_ans


def cases() -> list[object]:
    return [
        pytest.param(qname, qtype, transport, id=f"{qname}/{qtype}/{transport}")
        for qname, qtype, _why in QUERIES
        for transport in TRANSPORTS
    ]


@pytest.mark.parametrize(("qname", "qtype", "transport"), cases())
def test_same_answer(pair: Pair, qname: str, qtype: str, transport: str) -> None:
    ref = ask(pair.reference, qname, qtype, transport)
    got = ask(pair.subject, qname, qtype, transport)
    if (qname, qtype, transport) in MUST_TRUNCATE:
        assert ref.flags & dns.flags.TC, "BIND did not truncate: the test zone is wrong"
    ref_n, got_n = normalize(ref), normalize(got)
    # When either side truncated, compare the reduced view of both.
    if (ref.flags | got.flags) & dns.flags.TC and not (ref.flags & got.flags & dns.flags.TC):
        ref_n = [
            line
            for line in ref_n
            if not line.startswith(("answer", "authority", "additional", "edns"))
        ]
        got_n = [
            line
            for line in got_n
            if not line.startswith(("answer", "authority", "additional", "edns"))
        ]
    if qtype == "ANY" and not got.flags & dns.flags.TC:
        ref_n, got_n = _any_view(ref_n, got_n)
    if ref_n != got_n:
        why = next(w for n, t, w in QUERIES if (n, t) == (qname, qtype))
        diff = "\n".join(
            difflib.unified_diff(ref_n, got_n, "BIND", pair.subject.name, lineterm="", n=100)
        )
        pytest.fail(
            f"{qname} {qtype} over {transport} ({why}) differs:\n{diff}\n\n"
            f"=== BIND response ===\n{ref.to_text()}\n\n"
            f"=== {pair.subject.name} response ===\n{got.to_text()}",
            pytrace=False,
        )
