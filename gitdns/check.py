"""`gitdns check`: find what is wrong with zone and key files before a server loads them.

The zone files are read by the server's own reader (gitdns.zonefile) and checked by the
server's own rules (gitdns.zones.Zone, gitdns.keys.load_keys), so a file that passes
here loads there, and a file that fails gives the same ``file:line:column: message``.
On top of those errors come the checks a server cannot make for you: a name that was
meant to be absolute, a name server without an address, a serial that did not increase.

The checking is pure: texts in, a Report out. The last sections read files from git
trees and the index (local reads with pygit2, nothing on the network) and write the
hook scripts of `gitdns hook install`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import shlex
import stat
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from gitdns.keys import is_key_file, key_file_domain, load_keys
from gitdns.update import next_serial, serial_newer
from gitdns.zonefile import ZoneFileContents, ZoneFileError, read_zone_file
from gitdns.zones import Zone, zone_name

RT = dns.rdatatype.RdataType
# RFC 2181 section 8: a TTL (or SOA timer) with the top bit set is read as zero.
MAX_TTL = 2**31 - 1
ADDRESS_TYPES = (RT.A, RT.AAAA)
# Types that may sit at a delegation point in the parent zone (besides glue).
AT_CUT = frozenset((RT.NS, RT.DS, RT.NSEC, RT.NSEC3, RT.RRSIG))
# Last labels that make a name without a trailing dot look meant as absolute.
# Only generic ones: country codes and new gTLDs (eu, us, dev, app) are common labels
# inside zones too.
COMMON_TLDS = frozenset(("com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "arpa"))
_COMMON_TLD_LABELS = frozenset(tld.encode() for tld in COMMON_TLDS)
_TYPE_NAMES = sorted(
    name for name, value in RT.__members__.items() if not dns.rdatatype.is_metatype(value)
)


@dataclass(frozen=True)
class Problem:
    """One finding. ``str()``: ``file:line:column: message`` (errors, as the reader says
    them) or ``file:line:column: warning: message``; line and column when known."""

    file: str
    line: int | None
    message: str
    column: int | None = None
    warning: bool = False
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {'warning: ' if self.warning else ''}{self.message}"

    def text(self) -> str:
        """The finding with its hint on an indented line below."""
        return str(self) if self.hint is None else f"{self}\n  hint: {self.hint}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": "warning" if self.warning else "error",
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class FileResult:
    """What checking one file found; ``status`` is ok, error, added or removed."""

    file: str
    kind: str  # "zone" or "keys"
    zone: str | None = None
    status: str = "ok"
    serial: int | None = None
    old_serial: int | None = None
    records: int | None = None
    # With an old version: what changed (records as master-file lines; key names).
    added: list[str] | None = None
    removed: list[str] | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning]

    def summary(self) -> str:
        """``FILE: VERDICT (what it holds, what changed)``."""
        if self.status == "removed":
            what = f"zone {self.zone}" if self.kind == "zone" else "key file"
            return f"{self.file}: {what} removed"
        if self.kind == "zone":
            parts = [("new zone " if self.status == "added" else "zone ") + str(self.zone)]
            if self.serial is not None:
                serial = f"serial {self.serial}"
                if self.old_serial is not None and self.old_serial != self.serial:
                    serial = f"serial {self.old_serial} -> {self.serial}"
                parts.append(serial)
            if self.records is not None:
                parts.append(_count(self.records, "record"))
        else:
            keys = _count(self.records or 0, "key")
            parts = [("new file, " if self.status == "added" else "") + keys]
        if self.added is not None and self.removed is not None and self.status != "added":
            if self.added or self.removed:
                parts.append(f"{len(self.added)} added, {len(self.removed)} removed")
            else:
                parts.append("unchanged")
        verdict = "ok" if not self.errors else _count(len(self.errors), "error")
        if self.warnings:
            verdict += ", " + _count(len(self.warnings), "warning")
        return f"{self.file}: {verdict} ({', '.join(parts)})"

    def diff(self) -> list[str]:
        """The change as lines: ``-`` removed, ``+`` added, in DNS order."""
        changes = [("-", r) for r in self.removed or ()] + [("+", a) for a in self.added or ()]
        changes.sort(key=lambda change: (_diff_key(change[1]), change[0] == "+"))
        return [sign + text for sign, text in changes]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "zone": self.zone,
            "status": "error" if self.errors else self.status,
            "serial": self.serial,
            "old_serial": self.old_serial,
            "records": self.records,
            "added": self.added,
            "removed": self.removed,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass
class Report:
    files: list[FileResult] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.files for p in f.problems]

    @property
    def exit_code(self) -> int:
        """0 clean (warnings allowed), 1 errors."""
        return 1 if any(f.errors for f in self.files) else 0

    def text(self, diff: bool = False) -> str:
        """Findings, then one summary line per file (and with ``diff`` the changes)."""
        lines: list[str] = []
        for result in self.files:
            lines += [p.text() for p in result.problems]
            lines.append(result.summary())
            if diff:
                lines += result.diff()
        return "\n".join(lines) + ("\n" if lines else "")

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.exit_code == 0, "files": [f.to_json() for f in self.files]}


def _diff_key(line: str) -> tuple[Any, ...]:
    """Records by owner (DNS order), then type; key names by name."""
    words = line.split(" ", 4)
    try:
        name = dns.name.from_text(words[0])
        rdtype = dns.rdatatype.from_text(words[3]) if len(words) > 3 else 0
    except (dns.exception.DNSException, ValueError):
        return (dns.name.root, 0, line)
    return (name, rdtype, line)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# -- zone files ------------------------------------------------------------------------


def check_zone(
    data: bytes | str,
    filename: str,
    origin: dns.name.Name | None = None,
    old: bytes | str | None = None,
    zone_from_file_name: bool = False,
) -> FileResult:
    """Check one zone file; with ``old`` (its previous version) also the change.

    ``filename`` is how messages name the file; the zone is ``origin``, else the file's
    base name (as in a repository). An empty ``old`` means the zone is being added, an
    empty ``data`` (with a non-empty ``old``) that it is being removed.
    ``zone_from_file_name``: the caller did not say which zone, so warn when the file
    name does not look like one.
    """
    if origin is None:
        origin = zone_name(os.path.basename(filename))
        if origin is None:
            raise ValueError(f"{filename}: the file name is no zone name; say which with --zone")
    result = FileResult(filename, "zone", zone=str(origin))
    text, problem = _decode(data, filename)
    old_text = None
    if old is not None:
        old_text, _ = _decode(old, filename)
        old_text = old_text or ""
        if not text.strip() and problem is None and old_text.strip():
            result.status = "removed"
            return result
    if problem is not None:
        result.problems.append(problem)
        return result
    zone, contents, errors = _load(text, filename, origin)
    result.problems += [_with_hint(error, text, origin, contents) for error in errors]
    if zone_from_file_name:
        result.problems += _file_name_warning(text, filename, origin)
    if zone is None or contents is None:
        return result
    result.serial = zone.serial
    result.records = sum(len(rrset) for rrset in contents.rrsets)
    lines = _Lines(text, origin)
    result.problems += _lint(zone, contents, filename, lines)
    if old_text is not None:
        if not old_text.strip():
            result.status = "added"
            result.added, result.removed = _record_lines(_records(contents.rrsets).values()), []
        else:
            result.problems += _check_change(zone, contents, old_text, filename, lines, result)
    result.problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return result


def _decode(data: bytes | str, filename: str) -> tuple[str, Problem | None]:
    if isinstance(data, str):
        return data, None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as error:
        # The server's words (zones.load_zoneset), and where.
        line = data[: error.start].count(b"\n") + 1
        return "", Problem(filename, line, f"not UTF-8 text ({error.reason})")


def _load(
    text: str, filename: str, origin: dns.name.Name
) -> tuple[Zone | None, ZoneFileContents | None, list[ZoneFileError]]:
    """Read and build the zone exactly as zones.parse_zone does for the server."""
    try:
        contents = read_zone_file(text, origin, filename)
    except ZoneFileError as error:
        return None, None, [error]
    try:
        return Zone(origin, contents.rrsets), contents, []
    except ValueError as error:
        return None, contents, [ZoneFileError(filename, None, str(error))]


def _check_change(
    zone: Zone,
    contents: ZoneFileContents,
    old_text: str,
    filename: str,
    lines: _Lines,
    result: FileResult,
) -> list[Problem]:
    try:
        old_contents = read_zone_file(old_text, zone.origin, filename)
    except ZoneFileError:
        return []  # a broken old version has no serial to compare with
    old_soa = next(
        (r for r in old_contents.rrsets if r.rdtype == RT.SOA and r.name == zone.origin), None
    )
    if old_soa is None:
        return []
    old_serial = result.old_serial = old_soa[0].serial
    new_records = _records(contents.rrsets)
    old_records = _records(old_contents.rrsets)
    added = new_records.keys() - old_records.keys()
    removed = old_records.keys() - new_records.keys()
    result.added = _record_lines([new_records[key] for key in added])
    result.removed = _record_lines([old_records[key] for key in removed])
    if not (added or removed) or serial_newer(zone.serial, old_serial):
        return []
    line, column = lines.find(zone.origin, RT.SOA, 2)
    return [
        Problem(
            filename,
            line,
            f"the zone changed but its serial {zone.serial} did not increase"
            f" (previous serial {old_serial})",
            column,
            hint=f"increase the serial in the SOA record, e.g. to {next_serial(old_serial)}"
            " (secondaries copy a zone only when its serial increases)",
        )
    ]


_Record3 = tuple[dns.name.Name, int, Any]  # owner, TTL, rdata
# The fields that make up the common types' rdata: comparing them is what rdata
# equality means, without rendering every record to wire format to hash it.
_RDATA_FIELDS: dict[int, tuple[str, ...]] = {
    RT.A: ("address",),
    RT.AAAA: ("address",),
    RT.NS: ("target",),
    RT.CNAME: ("target",),
    RT.DNAME: ("target",),
    RT.PTR: ("target",),
    RT.MX: ("preference", "exchange"),
    RT.SRV: ("priority", "weight", "port", "target"),
    RT.TXT: ("strings",),
    RT.SOA: ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum"),
}


def _records(rrsets: list[dns.rrset.RRset]) -> dict[tuple[Any, ...], _Record3]:
    """Every record by a key equal for equal records (TTL included)."""
    records: dict[tuple[Any, ...], _Record3] = {}
    for rrset in rrsets:
        fields = _RDATA_FIELDS.get(rrset.rdtype)
        for rdata in rrset:
            data = tuple(getattr(rdata, f) for f in fields) if fields else (rdata,)
            records[(rrset.name, rrset.ttl, rrset.rdtype, *data)] = (rrset.name, rrset.ttl, rdata)
    return records


def _record_lines(records: Iterable[_Record3]) -> list[str]:
    """Records as master-file lines in DNS order (by name, then type)."""
    records = sorted(records, key=lambda r: (r[0], r[2].rdtype, r[2].to_text()))
    return [
        f"{name} {ttl} IN {dns.rdatatype.to_text(rdata.rdtype)} {rdata.to_text()}"
        for name, ttl, rdata in records
    ]


# -- hints for the reader's errors -------------------------------------------------------

_SOA_HINT = (
    "an SOA record has seven fields: primary name server, responsible mailbox, serial,"
    " refresh, retry, expire, minimum, e.g. '@ SOA ns1 hostmaster 1 86400 7200 1048576 3600'"
)


def _with_hint(
    error: ZoneFileError, text: str, origin: dns.name.Name, contents: ZoneFileContents | None
) -> Problem:
    return Problem(
        error.filename,
        error.line,
        error.message,
        error.column,
        hint=_hint(error, text, origin, contents),
    )


def _hint(
    error: ZoneFileError, text: str, origin: dns.name.Name, contents: ZoneFileContents | None
) -> str | None:
    message = error.message
    line = _line_text(text, error.line)
    if message.startswith("missing ") and "(" in line.partition(";")[2]:
        # The record was cut short because its "(" is commented out.
        return f"the '(' on line {error.line} is inside a ';' comment, which hides it"
    if message.startswith("unknown record type '"):
        word = message.split("'")[1]
        if line[:1] in (" ", "\t") and not line[: (error.column or 1) - 1].strip():
            return (
                "a line that starts with white space has no owner name of its own (it"
                f" continues the previous one), so '{word}' was read as the type: remove"
                " the white space to make it the owner"
            )
        close = difflib.get_close_matches(word.upper(), _TYPE_NAMES, n=1, cutoff=0.6)
        if close:
            return f"did you mean {close[0]}?"
        if "." in word or word.lower() == word:
            return "the record type (A, AAAA, CNAME, MX, NS, TXT...) is missing before the data"
        return "types gitdns does not know can be written TYPEnnn \\# LENGTH HEX (RFC 3597)"
    if message == "no TTL for this record and no $TTL before it":
        return "put a default TTL at the top of the file, e.g. '$TTL 3600' (seconds)"
    if message.startswith("missing ") and message.endswith(" in SOA record"):
        fields = _soa_fields(text, error.line)
        if fields is not None and len(fields) == 6 and not fields[1][:1].isdigit():
            return _SOA_HINT + "; this one has six: is the serial missing?"
        return _SOA_HINT
    if message.startswith("bad SOA "):
        return _SOA_HINT
    if message == "unbalanced parentheses: '(' is not closed":
        hidden = _paren_in_comment(text, error.line or 1, ")", forward=True)
        if hidden is not None:
            return f"the ')' on line {hidden} is inside a ';' comment, which hides it"
        return (
            "a '(' lets a record go on over several lines; close it with ')' after its last field"
        )
    if message == "unbalanced parentheses: ')' without '('":
        hidden = _paren_in_comment(text, error.line or 1, "(", forward=False)
        if hidden is not None:
            return f"the '(' on line {hidden} is inside a ';' comment, which hides it"
        return "remove the ')', or open the record's data with '(' before it"
    if message.startswith("SOA record of ") and message.endswith("is not at the zone apex"):
        return (
            f"the zone is {origin} (from the file name, or --zone): relative names are read"
            f" under {origin}; a name ending with '.' is absolute"
        )
    if " has a CNAME and other records " in message:
        return "a name with a CNAME can have no other records (RFC 1034 section 3.6.2)"
    if message.startswith("bad IPv4 address '") and ":" in message.split("'")[1]:
        return "an IPv6 address goes in an AAAA record"
    if message.startswith("no SOA record at the zone apex") and contents is not None:
        return _outside_hint(text, origin, contents)
    if message.startswith("unknown directive '"):
        return "the directives are $ORIGIN and $TTL"
    return None


def _outside_hint(text: str, origin: dns.name.Name, contents: ZoneFileContents) -> str | None:
    """The SOA is missing because the records landed outside the zone: say where."""
    if not contents.out_of_zone:
        return None
    line, owner = contents.out_of_zone[0]
    for number, entry in enumerate(text.split("\n"), 1):
        words = entry.split(";")[0].split()
        if number < line and len(words) >= 2 and words[0].upper() == "$ORIGIN":
            return (
                f"$ORIGIN {words[1]} on line {number} puts the records outside the zone"
                f" {origin} (the zone name comes from the file name, or --zone)"
            )
    return (
        f"the records from line {line} ({owner}) are outside the zone {origin}"
        " (the zone name comes from the file name, or --zone)"
    )


def _line_text(text: str, line: int | None) -> str:
    if line is None:
        return ""
    lines = text.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _paren_in_comment(text: str, line: int, paren: str, forward: bool) -> int | None:
    lines = text.split("\n")
    numbers = range(line, len(lines) + 1) if forward else range(line - 1, 0, -1)
    for number in numbers:
        code, _, comment = lines[number - 1].partition(";")
        if paren in comment and '"' not in code:
            return number
    return None


def _soa_fields(text: str, line: int | None) -> list[str] | None:
    """The data fields of the SOA record that ends on or spans ``line``."""
    for entry in _entries(text):
        if entry.tokens[0][1] <= (line or 0) <= entry.tokens[-1][1] + 1:
            words = [t[0].upper() for t in entry.tokens]
            if "SOA" in words:
                return [t[0] for t in entry.tokens[words.index("SOA") + 1 :]]
    return None


def _file_name_warning(text: str, filename: str, origin: dns.name.Name) -> list[Problem]:
    """`gitdns check db.example.zone`: without $ORIGIN or --zone the zone is the file name."""
    base = os.path.basename(filename)
    looks_like_file = base.lower().startswith("db.") or base.lower().rsplit(".", 1)[-1] in (
        "zone", "db", "txt", "conf", "bak", "orig", "old", "new", "tmp",
    )  # fmt: skip
    if not looks_like_file or re.search(r"(?im)^\$ORIGIN\s", text):
        return []
    return [
        Problem(
            filename,
            None,
            f"no $ORIGIN and no --zone: the zone is taken to be {origin} (the file name)",
            warning=True,
            hint="say which zone this is with --zone NAME (in a repository the file name is"
            " the zone name: name the file after the zone)",
        )
    ]


# -- checks on a loaded zone -------------------------------------------------------------


def _lint(zone: Zone, contents: ZoneFileContents, filename: str, lines: _Lines) -> list[Problem]:
    origin = zone.origin
    problems: list[Problem] = []
    # Findings about records, placed all at once at the end (one scan of the file).
    pending: list[tuple[_Request, Problem]] = []

    def at(request: _Request, message: str, warning: bool = False, hint: str | None = None) -> None:
        pending.append((request, Problem(filename, None, message, warning=warning, hint=hint)))

    depth = len(origin.labels)
    # www.example.com.example.com.: "www.example.com" written without its final dot.
    doubled = tuple(label.lower() for label in origin.labels[:-1] + origin.labels)
    doubled_names: set[dns.name.Name] = set()
    ns_targets = {
        rdata.target for node in zone.nodes.values() if RT.NS in node for rdata in node[RT.NS]
    }

    # Names that repeat the zone name, or look like a name elsewhere: a relative name
    # that was meant to be absolute. (Labels compared directly: big zones have many.)
    for rrset in zone.rrsets():
        for name, role, slot in _names_in(rrset):
            labels = name.labels
            if (
                origin != dns.name.root
                and len(labels) >= len(doubled)
                and labels[-len(doubled)].lower() == doubled[0]
                and tuple(label.lower() for label in labels[-len(doubled) :]) == doubled
            ):
                doubled_names.add(name)
                meant = name.relativize(origin).to_text()
                at(
                    (rrset.name, rrset.rdtype, slot, name),
                    f"{name} ({role}) repeats the zone name {origin}",
                    hint=f"end '{meant}' with a dot: a name without one is relative to"
                    f" the origin and gets {origin} appended",
                )
            elif (
                len(labels) - depth >= 2
                and labels[-depth - 1].lower() in _COMMON_TLD_LABELS
                and role in _PLAIN_NAME_ROLES
                and name.is_subdomain(origin)
                and (role == "owner" or name not in zone.names)
            ):
                meant = name.relativize(origin).to_text()
                at(
                    (rrset.name, rrset.rdtype, slot, name),
                    f"{name} ({role}) looks like a name outside the zone with {origin} appended",
                    warning=True,
                    hint=f"if '{meant}' was meant to be absolute, end it with a dot",
                )

    # TTLs and SOA timers with the top bit set are read as zero (RFC 2181 section 8).
    for rrset in zone.rrsets():
        if rrset.ttl > MAX_TTL:
            at(
                (rrset.name, rrset.rdtype, -1, None),
                f"TTL {rrset.ttl} of {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} is"
                f" above {MAX_TTL}, so resolvers read it as 0 (RFC 2181 section 8)",
            )
    soa = zone.soa[0]
    for index, timer in enumerate(("refresh", "retry", "expire", "minimum"), start=3):
        value = getattr(soa, timer)
        if value > MAX_TTL:
            at((origin, RT.SOA, index, None), f"SOA {timer} {value} is above {MAX_TTL}")

    # Records the server skips: outside the zone (other than glue), below a delegation.
    for line, owner in contents.out_of_zone:
        if owner in ns_targets:
            continue  # an address of a name server elsewhere: harmless glue
        problems.append(
            Problem(
                filename,
                line,
                f"{owner} is outside the zone {origin}; the record is ignored",
                warning=True,
            )
        )
    for name, node in zone.nodes.items() if zone.cuts else ():
        cut = _cut_above(zone, name)
        if cut is None:
            continue
        for rdtype in node:
            if name == cut and rdtype in AT_CUT:
                continue
            if rdtype in ADDRESS_TYPES and name in ns_targets:
                continue  # glue
            at(
                (name, rdtype, -2, None),
                f"{name} {dns.rdatatype.to_text(rdtype)} is at or below the delegation"
                f" {cut} (NS records), so it is not served; only glue addresses of name"
                " servers are",
                warning=True,
            )

    # Name servers, mail exchangers and services in the zone need addresses.
    for name, node in zone.nodes.items():
        for rdtype, rrset in node.items():
            for target, what, slot in _targets(rdtype, rrset):
                if target in doubled_names:
                    continue  # reported above
                problem = _target_problem(zone, name, target, what)
                if problem is not None:
                    message, hint = problem
                    at((name, rdtype, slot, target), message, warning=True, hint=hint)

    places = lines.place([request for request, _ in pending])
    for (_, problem), (line, column) in zip(pending, places, strict=True):
        problems.append(dataclasses.replace(problem, line=line, column=column))
    return problems


# Names checked for looking absolute; NS, MX and SRV targets are checked for addresses.
_PLAIN_NAME_ROLES = frozenset(
    (
        "owner",
        "SOA primary name server",
        "SOA mailbox",
        "CNAME target",
        "DNAME target",
        "PTR target",
    )
)


def _names_in(rrset: dns.rrset.RRset) -> Iterator[tuple[dns.name.Name, str, int | None]]:
    """The names in an RRset: (name, what it is, its data field; None: the owner)."""
    yield rrset.name, "owner", None
    for rdata in rrset:
        if rrset.rdtype == RT.SOA:
            yield rdata.mname, "SOA primary name server", 0
            yield rdata.rname, "SOA mailbox", 1
        elif rrset.rdtype in (RT.NS, RT.CNAME, RT.DNAME, RT.PTR):
            yield rdata.target, f"{dns.rdatatype.to_text(rrset.rdtype)} target", 0
        elif rrset.rdtype == RT.SRV:
            yield rdata.target, "SRV target", 3
        elif rrset.rdtype == RT.MX:
            yield rdata.exchange, "MX target", 1


def _looks_absolute(relative: dns.name.Name) -> bool:
    labels = relative.labels
    return len(labels) >= 2 and labels[-1].lower() in _COMMON_TLD_LABELS


def _cut_above(zone: Zone, name: dns.name.Name) -> dns.name.Name | None:
    """The highest delegation at or above name (below the apex), if any."""
    if not zone.cuts:
        return None
    found = None
    while name != zone.origin and name.is_subdomain(zone.origin):
        if name in zone.cuts:
            found = name
        name = name.parent()
    return found


def _targets(rdtype: int, rrset: dns.rrset.RRset) -> Iterator[tuple[dns.name.Name, str, int]]:
    """Host names that need addresses: (name, what it is, its data field)."""
    for rdata in rrset:
        if rdtype == RT.NS:
            yield rdata.target, "name server", 0
        elif rdtype == RT.MX:
            yield rdata.exchange, "mail exchanger", 1
        elif rdtype == RT.SRV:
            yield rdata.target, "SRV target", 3


def _target_problem(
    zone: Zone, owner: dns.name.Name, target: dns.name.Name, what: str
) -> tuple[str, str | None] | None:
    if target == dns.name.root or not target.is_subdomain(zone.origin):
        return None  # "." means no such service (RFC 2782, RFC 7505); others not ours
    node = zone.nodes.get(target, {})
    if any(t in node for t in ADDRESS_TYPES):
        return None
    cut = _cut_above(zone, target)
    if cut is not None and what != "name server":
        return None  # data of the child zone
    if RT.CNAME in node:
        return (
            f"{what} {target} of {owner} is an alias (CNAME); it must name a host with"
            " addresses (RFC 2181 section 10.3)",
            None,
        )
    if cut is None and _wildcard_address(zone, target):
        return None
    kind = "glue address" if cut is not None else "address"
    return (
        f"{what} {target} of {owner} has no {kind} (A or AAAA) in the zone",
        _absolute_hint(zone.origin, target),
    )


def _wildcard_address(zone: Zone, name: dns.name.Name) -> bool:
    """Does a wildcard synthesize an address for name (RFC 4592, simplified)?"""
    while name != zone.origin:
        name = name.parent()
        node = zone.nodes.get(dns.name.Name((b"*", *name.labels)), {})
        if any(t in node for t in ADDRESS_TYPES):
            return True
        if name in zone.names:
            return False
    return False


def _absolute_hint(origin: dns.name.Name, target: dns.name.Name) -> str | None:
    relative = target.relativize(origin)
    if _looks_absolute(relative):
        return f"if '{relative}' was meant to be absolute, end it with a dot"
    return None


# -- where records are -------------------------------------------------------------------

# One token of a master file: quoted string, comment, parenthesis or word.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|;.*|[()]|(?:[^\s;()"\\]|\\.)+|\\')
# A line without these is cut with str.split (most lines of a big zone).
_CAREFUL = re.compile(r'["()\\]')
_TYPES_BY_TEXT = {name: value for name, value in RT.__members__.items()}


class _Entry:
    """One entry of a master file (a record or a directive, parentheses joined)."""

    __slots__ = ("_tokens", "leading", "line", "number", "words")

    def __init__(
        self,
        leading: bool,
        words: list[str],
        number: int,
        line: str,
        tokens: list[tuple[str, int, int]] | None = None,
    ) -> None:
        self.leading = leading  # starts with white space: the owner is the previous one
        self.words = words
        self.number = number
        self.line = line
        self._tokens = tokens

    @property
    def tokens(self) -> list[tuple[str, int, int]]:
        """The words with their line and column (found again only when asked for)."""
        if self._tokens is None:
            self._tokens = [
                (match.group(), self.number, match.start() + 1)
                for match in _TOKEN.finditer(self.line.partition(";")[0])
            ]
        return self._tokens


def _entries(text: str) -> Iterator[_Entry]:
    depth = 0
    tokens: list[tuple[str, int, int]] = []
    leading = False
    first = 0
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for number, line in enumerate(text.split("\n"), 1):
        if depth == 0 and _CAREFUL.search(line) is None:
            words = line.partition(";")[0].split()
            if words:
                yield _Entry(line[:1] in (" ", "\t"), words, number, line)
            continue
        if depth == 0:
            tokens = []
            leading = line[:1] in (" ", "\t")
            first = number
        for match in _TOKEN.finditer(line):
            token = match.group()
            if token[0] == ";":
                break
            if token == "(":
                depth += 1
            elif token == ")":
                depth = max(depth - 1, 0)
            else:
                tokens.append((token, number, match.start() + 1))
        if depth == 0 and tokens:
            yield _Entry(leading, [t[0] for t in tokens], first, "", tokens)
    if depth and tokens:
        yield _Entry(leading, [t[0] for t in tokens], first, "", tokens)


@dataclass(frozen=True)
class _Record:
    at: tuple[int, int]  # line and column of the type
    owner_at: tuple[int, int] | None  # of the owner, when the record spells it
    before: list[tuple[str, int, int]]  # (owner,) TTL, class
    data: list[tuple[str, int, int]]
    origin: dns.name.Name  # the $ORIGIN the record was read under

    def field(self, index: int | None) -> tuple[int, int]:
        """Where data field ``index`` is (None: the owner; else the type)."""
        if index is None:
            return self.owner_at or self.at
        if index < len(self.data):
            return self.data[index][1], self.data[index][2]
        return self.at

    def names(self, index: int, name: dns.name.Name) -> bool:
        """Does data field ``index`` spell ``name``?"""
        if index >= len(self.data):
            return False
        try:
            return dns.name.from_text(self.data[index][0], self.origin) == name
        except (dns.exception.DNSException, ValueError):
            return False

    def ttl(self) -> tuple[int, int]:
        """Where the TTL is written (else the type)."""
        for text, line, column in self.before:
            if text[:1].isdigit():
                return line, column
        return self.at


def _place(record: _Record | None, field: int | None = -2) -> tuple[int | None, int | None]:
    """Line and column of a record: its type (-2), TTL (-1), owner (None) or a data field."""
    if record is None:
        return None, None
    if field == -2:
        return record.at
    if field == -1:
        return record.ttl()
    return record.field(field)


# Where to place a finding: owner and type of its record; the field (see _place) and,
# for a field holding a name, that name (it picks the record out of its RRset).
_Request = tuple[dns.name.Name, int, int | None, dns.name.Name | None]


def _name_key(name: dns.name.Name) -> str:
    return name.to_text().lower()


class _Lines:
    """Where records are, for findings made on RRsets.

    The reader keeps no line per record (a big zone would pay for it), so the file is
    scanned again once, for the records the findings are about. The file has been
    read without error by then, so this scan can be simple.
    """

    def __init__(self, text: str, origin: dns.name.Name) -> None:
        self.text = text
        self.origin = origin

    def find(
        self,
        owner: dns.name.Name,
        rdtype: int,
        field: int | None = -2,
        name: dns.name.Name | None = None,
    ) -> tuple[int | None, int | None]:
        return self.place([(owner, rdtype, field, name)])[0]

    def place(self, requests: list[_Request]) -> list[tuple[int | None, int | None]]:
        """Line and column for each request (None, None where not found)."""
        if not requests:
            return []
        index = self.scan({(_name_key(r[0]), r[1]) for r in requests})
        places = []
        for owner, rdtype, slot, name in requests:
            records = index.get((_name_key(owner), rdtype), [])
            if name is not None and slot is not None and slot >= 0:
                found = [r for r in records if r.names(slot, name)]
                records = found or records
            places.append(_place(records[0] if records else None, slot))
        return places

    def scan(self, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], list[_Record]]:
        owners = {key for key, _ in wanted}
        index: dict[tuple[str, int], list[_Record]] = {}
        origin = self.origin
        origin_key = _name_key(origin)
        owner_key = origin_key

        def key(text: str) -> str:
            # Owner spellings as keys without building Names: most are plain labels.
            if text == "@":
                return origin_key
            if "\\" in text or not text.isascii():
                return _name_key(dns.name.from_text(text, origin))
            lowered = text.lower()
            if lowered.endswith("."):
                return lowered
            return f"{lowered}.{origin_key}" if origin_key != "." else f"{lowered}."

        for entry in _entries(self.text):
            words = entry.words
            try:
                if not entry.leading and words[0].startswith("$"):
                    if words[0].upper() == "$ORIGIN" and len(words) > 1:
                        origin = dns.name.from_text(words[1], origin)
                        origin_key = _name_key(origin)
                    continue
                k = 0
                if not entry.leading:
                    owner_key = key(words[0])
                    k = 1
                if owner_key not in owners:
                    continue
                while k < len(words) and (words[k][:1].isdigit() or _is_class(words[k])):
                    k += 1
                if k >= len(words):
                    continue
                rdtype = _TYPES_BY_TEXT.get(words[k].upper())
                if rdtype is None:
                    rdtype = dns.rdatatype.from_text(words[k])
            except (dns.exception.DNSException, ValueError):
                continue
            if (owner_key, rdtype) not in wanted:
                continue
            tokens = entry.tokens
            owner_at = None if entry.leading else (tokens[0][1], tokens[0][2])
            index.setdefault((owner_key, rdtype), []).append(
                _Record((tokens[k][1], tokens[k][2]), owner_at, tokens[:k], tokens[k + 1 :], origin)
            )
        return index


def _is_class(text: str) -> bool:
    upper = text.upper()
    return upper in ("IN", "CH", "CS", "HS") or (upper.startswith("CLASS") and upper[5:].isdigit())


# -- key files -----------------------------------------------------------------------------

# load_keys warnings that leave a usable file: the rest mean a key the author wrote is
# ignored by the server, which `gitdns check` calls an error.
_HARMLESS_KEY_WARNINGS = ("it grants nothing", "repeats the DNSKEY of")
_KEY_WARNING = re.compile(r"(?P<line>[0-9]+): (?P<message>.*)", re.DOTALL)


def check_keys(
    files: Mapping[str, bytes],
    only: Collection[str] | None = None,
    old: Mapping[str, bytes] | None = None,
    display: Mapping[str, str] | None = None,
) -> list[FileResult]:
    """Check key files (root file name -> content) together, as the server loads them.

    ``only``: report these files (the others still count, e.g. for a name with two
    DNSKEYs in two files). ``old``: previous versions, for the keys added and removed.
    ``display``: how messages name a file (default: its name).
    """
    display = display or {}
    load = load_keys(files)
    names = sorted(only if only is not None else files)
    results = {name: FileResult(display.get(name, name), "keys", status="ok") for name in names}
    for warning in load.warnings:
        for name, result in results.items():
            prefix = name + ":"
            match = _KEY_WARNING.fullmatch(warning[len(prefix) :])
            if warning.startswith(prefix) and match:
                message = match["message"]
                harmless = any(text in message for text in _HARMLESS_KEY_WARNINGS)
                result.problems.append(
                    Problem(
                        result.file,
                        int(match["line"]),
                        message,
                        warning=harmless,
                        hint=_key_hint(message),
                    )
                )
                break
    old_load = load_keys(old) if old is not None else None
    for name, result in results.items():
        keys = {loaded.key.name: loaded.key for loaded in load.by_file.get(name, ())}
        result.records = len(keys)
        if old is None or old_load is None:
            continue
        if not files.get(name, b"").strip() and old.get(name, b"").strip():
            result.status = "removed"
            result.problems = []
            continue
        before = {loaded.key.name: loaded.key for loaded in old_load.by_file.get(name, ())}
        if not old.get(name, b"").strip():
            result.status = "added"
        # Key names only: a secret never reaches the output.
        result.added = sorted(str(n) for n in keys.keys() - before.keys())
        result.removed = sorted(str(n) for n in before.keys() - keys.keys())
        result.added += sorted(
            f"{n} (new secret)" for n in keys.keys() & before.keys() if keys[n] != before[n]
        )
    return list(results.values())


def _key_hint(message: str) -> str | None:
    if "is not a TSIG HMAC algorithm" in message or "HMAC-MD5" in message:
        return "163 is HMAC-SHA256; `gitdns keygen NAME` prints a DNSKEY line to copy"
    if "the domain of this key file" in message:
        return "a key goes in the _keys file of its zone (or a zone above), or in _keys"
    if "more than one DNSKEY" in message:
        return "keep one DNSKEY per key name"
    if "grants nothing" in message:
        return "name it <label>._update.<zone>, <label>._transfer.<zone> or <label>._notify.<zone>"
    return None


# -- whole trees and changes -------------------------------------------------------------


def check_file(
    name: str,
    data: bytes,
    old: bytes | None = None,
    display: str | None = None,
    origin: dns.name.Name | None = None,
    zone_from_file_name: bool = False,
) -> FileResult:
    """One file, zone or key file by its name."""
    if is_key_file(os.path.basename(name)) and origin is None:
        base = os.path.basename(name)
        key_file_domain(base)  # ValueError for a name that is no domain
        (result,) = check_keys(
            {base: data},
            old={base: old} if old is not None else None,
            display={base: display or name},
        )
        return result
    return check_zone(data, display or name, origin, old, zone_from_file_name)


def is_checked(name: str) -> bool:
    """Is this root file one the server reads (a zone or a key file)?"""
    return is_key_file(name) or zone_name(name) is not None


def check_tree(files: Mapping[str, bytes], old: Mapping[str, bytes] | None = None) -> Report:
    """Every root file of a tree, or with ``old`` (the previous tree) the changed ones."""
    if old is None:
        changed = sorted(name for name in files if is_checked(name))
    else:
        changed = sorted(
            name
            for name in files.keys() | old.keys()
            if is_checked(name) and files.get(name) != old.get(name)
        )
    report = Report()
    key_files = [name for name in changed if is_key_file(name)]
    by_name: dict[str, FileResult] = {}
    if key_files:
        current = {name: data for name, data in files.items() if is_key_file(name)}
        for name in key_files:
            current.setdefault(name, b"")
        previous = None if old is None else {n: old.get(n, b"") for n in key_files}
        for result in check_keys(current, key_files, previous):
            by_name[result.file] = result
    for name in changed:
        if name in by_name:
            report.files.append(by_name[name])
            continue
        previous_data = None if old is None else old.get(name, b"")
        report.files.append(check_zone(files.get(name, b""), name, None, previous_data))
    return report


def zones_to_notify(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[str]:
    """Zones to name in NOTIFYs after the tree went from old to new.

    Every changed zone (added and removed ones too). The primary fetches and reloads all
    files on any NOTIFY, so a change to key files alone needs one NOTIFY: for the zone
    of the key file (or the first zone below its domain) that the key may notify.
    """
    changed = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
    zones = sorted(str(origin) for name in changed if (origin := zone_name(name)) is not None)
    if zones:
        return zones
    present = sorted(origin for name in new if (origin := zone_name(name)) is not None)
    for name in sorted(changed):
        if not is_key_file(name):
            continue
        try:
            domain = key_file_domain(name)
        except ValueError:
            continue
        below = [origin for origin in present if origin.is_subdomain(domain)]
        if below:
            return [str(below[0])]
    return []


# -- reading git ---------------------------------------------------------------------------

REGULAR_FILE_MODES = (stat.S_IFREG | 0o644, stat.S_IFREG | 0o755)


def open_repository(path: str) -> Any:
    """A pygit2 Repository; from a hook, with git's environment (the quarantined
    objects of a push in pre-receive, the temporary index of `git commit -a`)."""
    import pygit2

    try:
        return pygit2.Repository(path, flags=pygit2.enums.RepositoryOpenFlag.FROM_ENV)
    except pygit2.GitError as error:
        raise ValueError(f"{path}: not a git repository ({error})") from None


def is_null_revision(rev: str) -> bool:
    """git's all-zero id: no such version (a new or a deleted branch in a hook)."""
    return len(rev) >= 40 and set(rev) == {"0"}


def tree_files(repo: Any, rev: str) -> dict[str, bytes]:
    """The root regular files of a revision, as the server reads them."""
    import pygit2

    if is_null_revision(rev):
        return {}
    try:
        tree = repo.revparse_single(rev).peel(pygit2.Tree)
    except (KeyError, ValueError, pygit2.GitError) as error:
        raise ValueError(f"unknown revision {rev!r} ({error})") from None
    return {
        entry.name: repo[entry.id].data for entry in tree if entry.filemode in REGULAR_FILE_MODES
    }


def head_files(repo: Any) -> dict[str, bytes]:
    """The root files of HEAD, or nothing before the first commit."""
    if repo.head_is_unborn:
        return {}
    return tree_files(repo, "HEAD")


def staged_files(repo: Any) -> dict[str, bytes]:
    """The root regular files in the index: what `git commit` is about to record."""
    return {
        entry.path: repo[entry.id].data
        for entry in repo.index
        if "/" not in entry.path and entry.mode in REGULAR_FILE_MODES
    }


# -- hooks ---------------------------------------------------------------------------------

HOOK_MARK = "# Installed by `gitdns hook install`"

_PRE_COMMIT = """#!/bin/sh
{mark}: refuse a commit whose zone or key files fail
# `gitdns check` (changed files, each against its version in HEAD).
exec {gitdns} check --repo . --staged
"""

_PRE_RECEIVE = """#!/bin/sh
{mark}: refuse a push whose zone or key files fail
# `gitdns check` (changed files, each against its version before the push: a changed
# zone needs a higher serial). A new branch has an all-zero OLD (every file is checked);
# a deleted one an all-zero NEW (nothing to check).
GITDNS={gitdns}
status=0
while read -r old new ref; do
    case $ref in refs/heads/*) ;; *) continue ;; esac
    "$GITDNS" check --repo . --rev "$new" --old-rev "$old" || status=1
done
exit $status
"""

_POST_RECEIVE = """#!/bin/sh
{mark}: after a push to the branch the primary serves,
# send it a NOTIFY for each changed zone, so that it fetches at once. Set up with
#   git config gitdns.server ADDRESS      (the primary; required)
#   git config gitdns.port PORT           (default 53)
#   git config gitdns.key NAME:ALG:SECRET (a key that may notify the zones)
#   git config gitdns.branch NAME         (default: the branch HEAD names)
GITDNS={gitdns}
server=$(git config gitdns.server) || {{
    echo "gitdns: no NOTIFY sent: set git config gitdns.server (and gitdns.key)" >&2
    exit 0
}}
port=$(git config gitdns.port) || port=53
branch=$(git config gitdns.branch) || branch=$(git symbolic-ref --short -q HEAD)
# gitdns notify reads the key from the environment: it stays out of `ps`.
GITDNS_KEY=$(git config gitdns.key) && export GITDNS_KEY
while read -r old new ref; do
    [ "$ref" = "refs/heads/$branch" ] || continue
    "$GITDNS" hook changed-zones --repo . "$old" "$new" | while read -r zone; do
        "$GITDNS" notify "$server" "$zone" --port "$port"
    done
done
exit 0
"""

HOOKS = {"pre-commit": _PRE_COMMIT, "pre-receive": _PRE_RECEIVE, "post-receive": _POST_RECEIVE}


def hook_script(kind: str, gitdns: str) -> str:
    """The text of hook ``kind`` calling the gitdns executable at absolute path gitdns."""
    return HOOKS[kind].format(mark=HOOK_MARK, gitdns=shlex.quote(gitdns))


def hooks_directory(repo: Any) -> str:
    """Where git looks for this repository's hooks (core.hooksPath, else GIT_DIR/hooks)."""
    try:
        configured = repo.config["core.hooksPath"]
    except KeyError:
        configured = None
    if configured:
        configured = os.path.expanduser(configured)
        base = repo.workdir if not repo.is_bare and repo.workdir else repo.path
        return os.path.join(base, configured)
    return os.path.join(repo.path, "hooks")


def install_hooks(repo: Any, kinds: Collection[str], gitdns: str, force: bool = False) -> list[str]:
    """Write the hooks; returns their paths. A hook not written by us is kept unless
    ``force`` (ValueError names it)."""
    directory = hooks_directory(repo)
    paths = [os.path.join(directory, kind) for kind in kinds]
    for path in paths:
        if os.path.exists(path) and not force:
            with open(path, encoding="utf-8", errors="replace") as existing:
                if HOOK_MARK not in existing.read():
                    raise ValueError(f"{path} exists and was not written by gitdns (--force)")
    os.makedirs(directory, exist_ok=True)
    for kind, path in zip(kinds, paths, strict=True):
        with open(path, "w", encoding="utf-8") as hook:
            hook.write(hook_script(kind, gitdns))
        os.chmod(path, 0o755)
    return paths
