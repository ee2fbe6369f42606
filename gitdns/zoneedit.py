"""Minimal edits of a master file: the git diff of an UPDATE shows just what changed.

Removed records lose their lines (the next line gets the owner written out when it
inherited it), added records are written after the last record of their owner (or at
the end of the file), and an SOA whose serial alone changed has that number replaced in
place. Comments, directives and layout stay as the author wrote them.

One pass over the lines; only the entries owned by names the edit touches are parsed
(by the shared reader), so a big zone is edited in time proportional to its size with
a small constant.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdatatype
import dns.ttl

from gitdns.update import with_serial
from gitdns.zonefile import ZoneFileError, paren_depth, read_rrsets

Record = tuple[dns.name.Name, int, dns.rdata.Rdata]

SOA = dns.rdatatype.SOA


class EditError(Exception):
    """The file cannot be edited to match the change (a record was not found)."""


@dataclass
class _Entry:
    """One logical line of the file: a record, a directive, or nothing (blank, comment)."""

    first: int  # index of its first physical line
    last: int  # index of its last physical line (parentheses span lines)
    text: str


def _entries(lines: list[str], selected: Iterable[int]) -> Iterator[tuple[_Entry, bool]]:
    """Logical lines starting at the selected physical lines, in order: physical lines
    joined while parentheses are open (RFC 1035 5.1). The flag says that lines were
    skipped before the entry."""
    count = len(lines)
    after = 0  # the first line not consumed yet
    for index in selected:
        if index < after:
            continue  # inside the previous entry's parentheses
        skipped = index > after
        line = lines[index]
        if "(" not in line:
            after = index + 1
            yield _Entry(index, index, line), skipped
            continue
        first = index
        depth = paren_depth(line, 0)
        while depth > 0 and index + 1 < count:
            index += 1
            depth = paren_depth(lines[index], depth)
        after = index + 1
        yield _Entry(first, index, "".join(lines[first : index + 1])), skipped


def _selected(lines: list[str], text: str, wanted: Iterable[dns.name.Name]) -> list[int]:
    """The lines the edit needs to look at: directives, owners that may be wanted (by
    their first label, or written with escapes), lines with parentheses, and the lines
    that inherit the owner of one of those. Found with str.find, so a big zone is not
    walked line by line in Python."""
    folded = "\n" + text.lower()  # "\n" + first label finds it at a line's start
    starts: set[int] = set()  # offsets in folded of the lines found
    for first in sorted({_first_label(name) for name in wanted} - {""}):
        for at in _find_all(folded, "\n" + first.lower()):
            if folded[at + len(first) + 1 : at + len(first) + 2] in _AFTER_OWNER:
                starts.add(at)
    for needle in ("\n$", "\n@"):
        starts.update(_find_all(folded, needle))
    for needle in ("\\", "("):
        starts.update(folded.rfind("\n", 0, at) for at in _find_all(folded, needle))
    count = len(lines)
    selected: list[int] = []
    line = 0
    offset = 0
    for start in sorted(starts):
        line += folded.count("\n", offset, start)
        offset = start
        if selected and line <= selected[-1]:
            continue
        selected.append(line)
        # The lines after it that inherit its owner (or are blank, or comments).
        follower = line + 1
        while follower < count and lines[follower][:1] in _INHERITING:
            selected.append(follower)
            follower += 1
    return selected


def _find_all(text: str, needle: str) -> Iterator[int]:
    at = text.find(needle)
    while at >= 0:
        yield at
        at = text.find(needle, at + 1)


# What may follow an owner's first label: more labels, or the fields.
_AFTER_OWNER = frozenset({".", " ", "\t", "\n", "\r", ""})
# How a line that does not name an owner starts: blank, a comment, or indented.
_INHERITING = frozenset({"", " ", "\t", ";", "\n", "\r"})


def _first_label(name: dns.name.Name) -> str:
    """The first label as a master file writes it; empty when it needs escapes there
    (such owners are found by their backslash)."""
    if not name.labels or not name.labels[0]:
        return ""
    label = name.labels[0]
    if any(byte < 0x21 or byte > 0x7E or byte in _ESCAPED for byte in label):
        return ""
    return label.decode("ascii")


# Printable characters a master file escapes in a label (as dnspython writes them).
_ESCAPED = frozenset(b'"().;\\@$')


class _FullScan(Exception):
    """The edit needs what a skipped line says (the last TTL of a file without $TTL)."""


def _tokens(text: str) -> list[str]:
    """The first whitespace-separated fields before any comment (owner, TTL, more)."""
    if ";" in text and '"' not in text:
        text = text.split(";", 1)[0]
    if "(" in text:
        text = text.replace("(", " ").replace(")", " ")
    return text.split(None, 3)


def edit_zone_text(
    text: str,
    origin: dns.name.Name,
    filename: str,
    removed: Iterable[Record],
    added: Iterable[Record],
) -> str:
    """text with removed records' lines dropped and added records written in.

    An SOA replaced by one that differs only in its serial keeps its lines, serial
    changed in place. Raises EditError when a removed record is not in the file.
    """
    # A TTL change arrives as the record removed and added back: its line is rewritten.
    gone: Counter = Counter((name, rdata.rdtype, rdata) for name, _, rdata in removed)
    new = list(added)
    old_soa = next((key for key in gone if key[1] == SOA), None)
    new_soa = next((record for record in new if record[2].rdtype == SOA), None)
    serial_only = (
        old_soa is not None
        and new_soa is not None
        and with_serial(old_soa[2], new_soa[2].serial) == new_soa[2]
    )
    if serial_only:
        del gone[old_soa]
        new.remove(new_soa)
    wanted = {name for name, _, _ in gone} | {name for name, _, _ in new}
    if serial_only:
        wanted.add(old_soa[0])
    spelled_in: dict[dns.name.Name, frozenset[str]] = {}

    def spellings(at: dns.name.Name) -> frozenset[str]:
        """How a wanted owner may be written under $ORIGIN at (lowercase)."""
        known = spelled_in.get(at)
        if known is None:
            forms = set()
            for name in wanted:
                forms.add(name.to_text().lower())
                if name == at:
                    forms.add("@")
                elif name.is_subdomain(at):
                    forms.add(name.relativize(at).to_text().lower())
            known = spelled_in[at] = frozenset(forms)
        return known

    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    soa = new_soa if serial_only else None
    try:
        if len(lines) != text.count("\n") + (not text.endswith("\n")):
            raise _FullScan  # line breaks other than \n: counting them would mislead
        selected = _selected(lines, text, wanted)
        return _edit(lines, origin, filename, gone, new, soa, selected, spellings, wanted)
    except _FullScan:
        return _edit(lines, origin, filename, gone, new, soa, range(len(lines)), spellings, wanted)


def _edit(
    lines: list[str],
    origin: dns.name.Name,
    filename: str,
    gone: Counter,
    new: list[Record],
    new_soa: Record | None,
    selected: Iterable[int],
    spellings: Callable[[dns.name.Name], frozenset[str]],
    wanted: set[dns.name.Name],
) -> str:
    """The edit, looking at the selected lines only."""
    gone = gone.copy()
    lines = lines.copy()
    drop: set[int] = set()
    replace: dict[int, str] = {}
    # Where to add records of a name: after the last line of its last entry.
    block_end: dict[dns.name.Name, tuple[int, dns.name.Name]] = {}
    current_origin = origin
    default_ttl: int | None = None
    last_ttl: int | None = None
    owner: dns.name.Name | None = None
    owner_text = ""
    owner_origin = origin
    inherit_fix: int | None = None  # first line of an entry that lost its owner's line
    here = spellings(current_origin)
    gapped = False
    for entry, skipped in _entries(lines, selected):
        if skipped:
            # What was skipped named owners the edit does not touch.
            gapped = True
            owner, inherit_fix = None, None
        tokens = _tokens(entry.text)
        if not tokens:
            continue
        word = tokens[0]
        if word.startswith("$"):
            if word.upper() == "$ORIGIN" and len(tokens) > 1:
                current_origin = dns.name.from_text(tokens[1], current_origin)
                here = spellings(current_origin)
            elif word.upper() == "$TTL" and len(tokens) > 1:
                default_ttl = dns.ttl.from_text(tokens[1])
            continue
        inherited = entry.text[0] in " \t"
        if not inherited:
            owner_text, owner_origin = word, current_origin
            # Names are parsed only when their spelling may be one of the wanted ones:
            # a big zone is scanned, not parsed.
            if word.lower() in here or "\\" in word:
                owner = current_origin if word == "@" else dns.name.from_text(word, current_origin)
            else:
                owner = None
            fields = tokens[1:]
            inherit_fix = None
        else:
            fields = tokens
            if inherit_fix is not None:
                # The line that named this entry's owner is gone: name it here.
                spelled = (
                    owner_text
                    if owner_origin == current_origin
                    else dns.name.from_text(owner_text, owner_origin).to_text()
                )
                replace[entry.first] = spelled + lines[entry.first]
                inherit_fix = None
        if default_ttl is None and fields and fields[0][0].isdigit():
            last_ttl = dns.ttl.from_text(fields[0])
        if owner is None or owner not in wanted:
            continue
        if default_ttl is None and gapped:
            raise _FullScan
        block_end[owner] = (entry.last, current_origin)
        for record in _parse(entry, owner, current_origin, default_ttl, last_ttl, origin, filename):
            name, _, rdata = record
            key = (name, rdata.rdtype, rdata)
            if new_soa is not None and rdata.rdtype == SOA:
                _serial_in_place(lines, entry, new_soa[2].serial, replace)
            elif gone[key]:
                gone[key] -= 1
                drop.update(range(entry.first, entry.last + 1))
                replace.pop(entry.first, None)
                if not inherited:
                    inherit_fix = entry.first
    missing = [key for key, count in gone.items() if count]
    if missing and gapped:
        raise _FullScan  # the full scan decides
    if missing:
        name, rdtype, rdata = missing[0]
        raise EditError(
            f"{filename}: cannot find {name} {dns.rdatatype.to_text(rdtype)} {rdata} to remove"
        )
    inserts: dict[int, list[str]] = {}
    tail: list[str] = []
    for name, ttl, rdata in new:
        where = block_end.get(name)
        at_origin = where[1] if where else current_origin
        line = _format(name, ttl, rdata, at_origin)
        if where is None:
            tail.append(line)
        else:
            inserts.setdefault(where[0], []).append(line)
    # Few lines change: edit the list from the end, so earlier indexes stay valid.
    for index in sorted(drop | replace.keys() | inserts.keys(), reverse=True):
        lines[index + 1 : index + 1] = inserts.get(index, [])
        if index in drop:
            del lines[index]
        elif index in replace:
            lines[index] = replace[index]
    lines.extend(tail)
    return "".join(lines)


def _parse(
    entry: _Entry,
    owner: dns.name.Name,
    current_origin: dns.name.Name,
    default_ttl: int | None,
    last_ttl: int | None,
    origin: dns.name.Name,
    filename: str,
) -> list[Record]:
    """The records of one entry, read by the shared reader in the entry's context."""
    body = entry.text
    if body[0] in " \t":
        body = f"{owner} {body.lstrip()}"
    ttl = default_ttl if default_ttl is not None else last_ttl
    header = f"$ORIGIN {current_origin}\n" + (f"$TTL {ttl}\n" if ttl is not None else "")
    try:
        rrsets = read_rrsets(header + body, origin, filename)
    except ZoneFileError:
        return []
    return [(rrset.name, rrset.ttl, rdata) for rrset in rrsets for rdata in rrset]


SERIAL_FIELD = 2  # SOA rdata: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM


def _serial_in_place(lines: list[str], entry: _Entry, serial: int, replace: dict[int, str]) -> None:
    """Replace the SOA's serial where it is written, whatever the layout."""
    seen_type = False
    field = -1
    for index in range(entry.first, entry.last + 1):
        line = lines[index]
        code = line.split(";", 1)[0]
        for match in re.finditer(r"[^\s()]+", code):
            token = match.group()
            if not seen_type:
                seen_type = token.upper() == "SOA"
                continue
            field += 1
            if field == SERIAL_FIELD:
                replace[index] = line[: match.start()] + str(serial) + line[match.end() :]
                return
    raise EditError("cannot find the SOA serial to change")


def _format(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata, origin: dns.name.Name) -> str:
    owner = name.relativize(origin).to_text() if name.is_subdomain(origin) else name.to_text()
    if name == origin:
        owner = "@"
    text = rdata.to_text(origin=origin, relativize=True)
    return f"{owner}\t{ttl}\tIN\t{dns.rdatatype.to_text(rdata.rdtype)}\t{text}\n"
