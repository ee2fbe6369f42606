"""Reading master files (RFC 1035 section 5) into RRsets, with line and column in errors.

One reader serves the server's loads and reloads and `gitdns check`, so both report a
broken file with the same ``file:line:column: message``.

This is our own reader rather than ``dns.zone.from_text``: dnspython reports many errors
one line late (its tokenizer has already eaten the newline), gives no column, and takes
about 50 s and 290 MB on a 275,000-line zone. The semantics follow dnspython's (which
follow BIND's): $ORIGIN, $TTL, omitted owner, TTL and class, TTL units, parentheses,
quoted strings, escapes, records outside the zone skipped. ``read_zone_file`` lists the
deliberate differences.

Where the speed comes from: most lines are cut with ``str.split``; each distinct name
spelling is parsed once and the Name shared; the common types (A, AAAA, NS, CNAME,
DNAME, PTR, MX, SRV, SOA, TXT) are checked here and built without dnspython's tokenizer,
and MX, NS, SRV, CNAME and DNAME data that repeats is built (and hashed) once. Other
types, and data with escapes, go through ``dns.rdata.from_text``.
"""

from __future__ import annotations

import gc
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.DNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset
import dns.tokenizer

IN = dns.rdataclass.IN
RT = dns.rdatatype.RdataType
MAX_TTL = 2**32 - 1


@dataclass(frozen=True)
class ZoneFileError(Exception):
    """A master file that cannot be used.

    ``str()`` is ``file:line:column: message``, or ``file:line: message`` when the column
    is unknown, or ``file: message`` for problems of the file as a whole.
    """

    filename: str
    line: int | None
    message: str
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.filename}: {self.message}"
        if self.column is None:
            return f"{self.filename}:{self.line}: {self.message}"
        return f"{self.filename}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class ZoneFileContents:
    """What a master file holds for its zone."""

    rrsets: list[dns.rrset.RRset]
    # Records whose owner is not at or below the zone origin, as (line, owner): skipped
    # as dnspython does, kept so that `gitdns check` can warn about them.
    out_of_zone: list[tuple[int, dns.name.Name]] = field(default_factory=list)
    # The same RRsets by owner and type, as gitdns.zones.Zone indexes them (of RRSIGs
    # covering different types, the last one), for Zone.from_nodes to take over.
    nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = field(default_factory=dict)


def read_rrsets(text: str, origin: dns.name.Name, filename: str) -> list[dns.rrset.RRset]:
    """Parse a zone's master file into absolute RRsets of class IN.

    ``$INCLUDE`` is refused: a repository must never make the server read its own files.
    Raises ZoneFileError.
    """
    return read_zone_file(text, origin, filename).rrsets


def read_zone_file(text: str, origin: dns.name.Name, filename: str) -> ZoneFileContents:
    """Parse a zone's master file; raises ZoneFileError at the first problem.

    Records are merged into RRsets by (owner, type) in order of first appearance; an
    RRset is named as its first record spells the owner, its TTL is the lowest of its
    records' TTLs and repeated records count once, as in dnspython. Where we differ from
    ``dns.zone.from_text``, on purpose:

    - ``$INCLUDE`` and ``$GENERATE`` are errors (a repository must not make the server
      read its files; generated records cannot be changed by a minimal edit).
    - Two different records of a singleton type (SOA, CNAME, DNAME, NSEC, NXT) at one
      name are an error, as in BIND; dnspython silently keeps the last one.
    - CNAME beside other data and an SOA away from the apex are errors with a line
      (dnspython's have none); meta types (ANY, AXFR, OPT...) are refused.
    - A CR ends a line even inside quotes (dnspython keeps it inside quotes).
    - Trailing comments are not kept on the rdata (``rdcomment`` stays None).
    """
    if not origin.is_absolute():
        raise ValueError(f"zone origin {origin} is not absolute")
    with CollectionPaused():
        return _Reader(origin, filename).read(text)


class CollectionPaused:
    """Pauses the cyclic garbage collector (if it runs) while a zone is read and indexed.

    Reading makes a few objects per record and keeps them all: the collector would walk
    the growing heap again and again (a third of the time). With ``freeze``, what was
    made is then moved out of the collector's sight (``gc.freeze``): zone data hold no
    cycles, are freed by reference counting when the zone is replaced, and walking a
    million objects costs a second at the next collection and at every full one. The
    garbage there is beforehand is collected first, so that none is frozen with them.
    (No contextlib.contextmanager: it sets __traceback__ on the frozen ZoneFileError.)
    """

    def __init__(self, freeze: bool = False) -> None:
        self.freeze = freeze
        self.collecting = False

    def __enter__(self) -> None:
        self.collecting = gc.isenabled()
        if self.collecting and self.freeze:
            gc.collect()  # what earlier loads froze is not walked again: cheap
        gc.disable()

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self.collecting:
            if self.freeze and kind is None:
                gc.freeze()
            gc.enable()


class _Found(Exception):
    """What a probing reader looks for is on this line."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Bad(Exception):
    """A problem with token ``index`` of the current entry (``len(tokens)``: its end)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


# A line without these is cut with str.split (whose idea of white space is the zone
# file's once these are excluded); one whose first such character is a quote and that
# has none of the others is cut at the quotes; any other goes through _SCAN. They are
# '"', '(', ')', backslash, the controls that str.split takes for white space (VT, FF,
# \x1c-\x1f) and anything not ASCII: written as the complement of one character class,
# which the regex engine scans several times faster than alternatives.
_SPECIAL = re.compile(r"[^\x00-\x0a\x0d-\x1b\x20\x21\x23-\x27\x2a-\x5b\x5d-\x7f]")
_CAREFUL = re.compile(r"[^\x00-\x0a\x0d-\x1b\x20-\x27\x2a-\x5b\x5d-\x7f]")  # a quote is fine
_SCAN = re.compile(
    r"""
    (?P<space>[ \t]+)
    |(?P<newline>\n)
    |(?P<comment>;[^\n]*)
    |(?P<open>\()
    |(?P<close>\))
    |"(?P<quoted>(?:[^"\\\n]|\\.)*)"   # a backslash may escape a newline inside quotes
    |(?P<unclosed>")
    |(?P<word>(?:[^ \t\n;()"\\]|\\[^\n])+)
    |(?P<backslash>\\)
    """,
    re.VERBOSE | re.DOTALL,
)
_TTL_UNITS = re.compile(r"(?:[0-9]+[wdhms])+", re.IGNORECASE)
_TTL_PART = re.compile(r"([0-9]+)([wdhms])", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

_CLASSES: dict[str, int] = {
    name: int(value) for name, value in dns.rdataclass.RdataClass.__members__.items()
}
_CLASS_WORDS = {**_CLASSES, **{name.lower(): value for name, value in _CLASSES.items()}}
_TYPES: dict[str, RT] = {}
for _name, _value in RT.__members__.items():
    if not dns.rdatatype.is_metatype(_value):  # those are refused by type_of
        _TYPES[_name] = _value
        _TYPES[_name.lower()] = _value
_SINGLETONS = frozenset(t for t in RT if dns.rdatatype.is_singleton(t))
# Types whose records cover another type: one RRset per covered type at a name.
_COVERING = frozenset((RT.RRSIG, RT.SIG))
# Read per record: a module constant costs a tenth of an enum attribute's lookup.
_NONE, _SOA, _TXT = RT.NONE, RT.SOA, RT.TXT
_inet_pton, _AF_INET = socket.inet_pton, socket.AF_INET
# How many spellings, data and strings the reader remembers to share (names, shared,
# strings): a table that is full is emptied, and what recurs is learnt again. Unbounded,
# they would hold an entry for every unique value of a big zone until it is read.
_REMEMBERED = 8192
# Types whose data often repeats across names: built once, hashed once, shared.
_SHARED = frozenset((RT.MX, RT.NS, RT.SRV, RT.CNAME, RT.DNAME))
_NEUTRAL = dns.node.NodeKind.NEUTRAL
_KINDS: dict[int, dns.node.NodeKind] = {}
# dnspython's messages that say less than naming the token does
_VAGUE = {"", "Text input is malformed."}
_EOF = dns.tokenizer.Token(dns.tokenizer.EOF)
_ROOT = dns.name.root


def _parse_ttl(text: str) -> int | None:
    """The seconds in a TTL (``3600``, ``1h30m``), or None if text is no TTL at all."""
    if text.isdigit() and text.isascii():
        return int(text)
    if _TTL_UNITS.fullmatch(text):
        return sum(int(n) * _UNIT_SECONDS[unit.lower()] for n, unit in _TTL_PART.findall(text))
    return None


def _ttl(text: str, index: int, what: str = "TTL") -> int:
    value = _parse_ttl(text)
    if value is None:
        if what == "TTL" and not text.isalnum():
            # Not even meant as a TTL: rather data where the type should be.
            raise _Bad(index, f"expected a TTL, class or record type, found '{text}'")
        raise _Bad(index, f"bad {what} '{text}'")
    if value > MAX_TTL:
        raise _Bad(index, f"{what} {text} is out of range (0 to {MAX_TTL})")
    return value


def _uint(text: str, index: int, what: str, limit: int) -> int:
    if text.isdigit() and text.isascii():
        value = int(text)
        if value <= limit:
            return value
        raise _Bad(index, f"{what} {text} is out of range (0 to {limit})")
    raise _Bad(index, f"bad {what} '{text}' (expecting a number)")


def _split_quoted(line: str) -> tuple[list[str], list[bool]] | None:
    """Cut a line whose only special characters are quotes (and ; comments), or None
    when a quote is not closed (the careful scanner then says where)."""
    parts = line.split('"')
    if len(parts) == 3 and ";" not in parts[0] and (not parts[2] or parts[2].isspace()):
        # The common case: one quoted string at the end (TXT "v=spf1 -all").
        toks = parts[0].split()
        quoted = [False] * len(toks)
        toks.append(parts[1])
        quoted.append(True)
        return toks, quoted
    last = len(parts) - 1
    toks: list[str] = []
    quoted: list[bool] = []
    for index, part in enumerate(parts):
        if index & 1:
            if index == last:
                return None
            toks.append(part)
            quoted.append(True)
            continue
        cut = part.find(";")
        words = (part if cut < 0 else part[:cut]).split()
        toks += words
        quoted += [False] * len(words)
        if cut >= 0:
            break
    return toks, quoted


# -- building dnspython objects without their constructors' repeated checks -------------


def _slots(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = getattr(klass, "__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


def _rdata_maker(
    cls: type[dns.rdata.Rdata], rdtype: RT, fields: tuple[str, ...], sample: tuple[Any, ...]
) -> Callable[..., dns.rdata.Rdata]:
    """A constructor for rdata whose fields we have already checked.

    The classes' own __init__ converts and checks every field again, at about 10 us a
    record (most of the time a big zone took). Rdata are immutable value objects, so
    fill the slots directly; should this dnspython lay a class out differently than we
    know, use the real constructor.
    """

    def slow(*values: Any) -> dns.rdata.Rdata:
        return cls(IN, rdtype, *values)

    if _slots(cls) != {"rdclass", "rdtype", "rdcomment", *fields}:
        return slow
    new = cls.__new__
    setattr_ = object.__setattr__

    def fast(*values: Any) -> dns.rdata.Rdata:
        rd = new(cls)
        setattr_(rd, "rdclass", IN)
        setattr_(rd, "rdtype", rdtype)
        setattr_(rd, "rdcomment", None)
        for name, value in zip(fields, values, strict=True):
            setattr_(rd, name, value)
        return rd

    if len(fields) == 1:
        (only,) = fields

        def fast(value: Any) -> dns.rdata.Rdata:  # type: ignore[misc]  # A, TXT...
            rd = new(cls)
            setattr_(rd, "rdclass", IN)
            setattr_(rd, "rdtype", rdtype)
            setattr_(rd, "rdcomment", None)
            setattr_(rd, only, value)
            return rd

    try:
        made, real = fast(*sample), slow(*sample)
        if made == real and made.to_text() == real.to_text() and hash(made) == hash(real):
            return fast
    except Exception:
        pass
    return slow


def _name_maker() -> Callable[[tuple[bytes, ...]], dns.name.Name]:
    """Names from labels we have already checked (dns.name.Name() checks them again)."""
    if _slots(dns.name.Name) != {"labels"}:
        return dns.name.Name
    new = dns.name.Name.__new__
    setattr_ = object.__setattr__

    def fast(labels: tuple[bytes, ...]) -> dns.name.Name:
        name = new(dns.name.Name)
        setattr_(name, "labels", labels)
        return name

    sample = (b"www", b"Example", b"")
    if fast(sample) == dns.name.Name(sample) and str(fast(sample)) == "www.Example.":
        return fast
    return dns.name.Name


_RRsetMaker = Callable[[dns.name.Name, RT, RT, int, dict], dns.rrset.RRset]


def _rrset_maker() -> tuple[_RRsetMaker, bool]:
    """RRsets around an ``items`` dict of rdata we made, and whether we may add to
    ``items`` ourselves.

    RRset() and RRset.add convert and check class, type, covers and TTL for every
    record, and hash each rdata again. With another layout of dns.set.Set or
    dns.rrset.RRset than we know, use the constructor and add().
    """

    def slow(name: dns.name.Name, rdtype: RT, covers: RT, ttl: int, items: dict):
        rrset = dns.rrset.RRset(name, IN, rdtype, covers)
        for rd in items:
            rrset.add(rd, ttl)
        return rrset

    def fast(name: dns.name.Name, rdtype: RT, covers: RT, ttl: int, items: dict):
        rrset = new(dns.rrset.RRset)
        rrset.items = items
        rrset.rdclass = IN
        rrset.rdtype = rdtype
        rrset.covers = covers
        rrset.ttl = ttl
        rrset.name = name
        rrset.deleting = None
        return rrset

    expected = {"items", "rdclass", "rdtype", "covers", "ttl", "name", "deleting"}
    new = dns.rrset.RRset.__new__
    try:
        sample = dns.rdata.from_text(IN, RT.A, "192.0.2.1")
        made = fast(_ROOT, RT.A, RT.NONE, 300, {sample: None})
        real = slow(_ROOT, RT.A, RT.NONE, 300, {sample: None})
        if (
            _slots(dns.rrset.RRset) == expected
            and isinstance(real.items, dict)
            and made == real
            and made.to_text() == real.to_text()
        ):
            return fast, True
    except Exception:
        pass
    return slow, False


make_name = _name_maker()
make_rrset, _OWN_ITEMS = _rrset_maker()
_EXAMPLE = dns.name.from_text("example.")
make_a = _rdata_maker(dns.rdtypes.IN.A.A, RT.A, ("address",), ("192.0.2.1",))
make_aaaa = _rdata_maker(dns.rdtypes.IN.AAAA.AAAA, RT.AAAA, ("address",), ("2001:db8::1",))
make_txt = _rdata_maker(dns.rdtypes.ANY.TXT.TXT, RT.TXT, ("strings",), ((b"a", b""),))
make_mx = _rdata_maker(dns.rdtypes.ANY.MX.MX, RT.MX, ("preference", "exchange"), (10, _EXAMPLE))
make_srv = _rdata_maker(
    dns.rdtypes.IN.SRV.SRV, RT.SRV, ("priority", "weight", "port", "target"), (1, 2, 3, _EXAMPLE)
)
make_soa = _rdata_maker(
    dns.rdtypes.ANY.SOA.SOA,
    RT.SOA,
    ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum"),
    (_EXAMPLE, _EXAMPLE, 1, 2, 3, 4, 5),
)
TARGET_MAKERS = {
    rdtype: _rdata_maker(cls, rdtype, ("target",), (_EXAMPLE,))
    for rdtype, cls in (
        (RT.NS, dns.rdtypes.ANY.NS.NS),
        (RT.CNAME, dns.rdtypes.ANY.CNAME.CNAME),
        (RT.DNAME, dns.rdtypes.ANY.DNAME.DNAME),
        (RT.PTR, dns.rdtypes.ANY.PTR.PTR),
    )
}
_TARGET_FIELD = {RT.NS: "name server", RT.CNAME: "target name", RT.DNAME: "target name"}
_SOA_FIELDS = (
    "primary name server",
    "responsible mailbox",
    "serial",
    "refresh",
    "retry",
    "expire",
    "minimum",
)


class _TokenFeed(dns.tokenizer.Tokenizer):
    """Gives dnspython's rdata parsers the tokens we have cut, and tells how far they read."""

    def __init__(self, tokens: list[dns.tokenizer.Token]) -> None:
        super().__init__("")
        self.tokens = tokens
        self.next = 0

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        index = self.next
        self.next = index + 1
        return self.tokens[index] if index < len(self.tokens) else _EOF

    def unget(self, token: dns.tokenizer.Token) -> None:
        self.next -= 1


# A parsed name: (name, key, at or below the zone origin). Names are equal when their
# keys are: the labels case-folded and joined with dots (cheap to hash, small), or a
# tuple of them when a label holds a dot itself.
_Entry = tuple[dns.name.Name, Any, bool]
# An owner: (name, at or below the zone origin, one plain label too long to be a name).
# A plain label's Name is made without new_name's checks; the error, if any, is raised
# where the owner is first used (owner_name), as for any other name.
_Owner = tuple[dns.name.Name, bool, bool]


def _key(labels: tuple[bytes, ...]) -> bytes | tuple[bytes, ...]:
    for label in labels:
        if b"." in label:
            return tuple(label.lower() for label in labels)
    return b".".join(labels).lower()


class _Reader:
    def __init__(self, origin: dns.name.Name, filename: str) -> None:
        self.filename = filename
        self.zone_origin = origin
        self.zone_key = _key(origin.labels)
        self.zone_suffix = b"." + self.zone_key if isinstance(self.zone_key, bytes) else None
        # Parsed names by spelling, one table per $ORIGIN: most names recur, and sharing
        # the Name objects keeps the zone small.
        self.tables: dict[tuple[bytes, ...], dict[str, _Entry]] = {}
        self.set_origin(origin)
        # The owner of the last record, and how it was spelled under the current $ORIGIN
        # (None: not since that $ORIGIN).
        self.last_owner: _Owner = (origin, True, False)
        self.last_spelling: str | None = None
        # The TTL state of dns.zonefile.Reader (in its RFC 2308 mode).
        self.last_ttl: int | None = None
        self.default_ttl: int | None = None
        self.default_ttl_from_soa = False
        self.ttls: dict[str, int] = {}
        self.types: dict[str, RT] = dict(_TYPES)
        self.strings: dict[bytes, bytes] = {}
        # Owner -> type -> RRset, as the Zone keeps them: nothing else is kept per name
        # (it is most of the memory a big zone needs). RRSIGs, one RRset per covered
        # type, are all in covering.
        self.nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        self.covering: dict[dns.name.Name, list[dns.rrset.RRset]] = {}
        self.rrsets: list[dns.rrset.RRset] = []
        self.out_of_zone: list[tuple[int, dns.name.Name]] = []
        # The items dicts that RRsets of repeated data share (by id): copied before a
        # record is added to one.
        self.shared_items: set[int] = set()
        # When set, (owner, type keys): stop at the first such record and say where
        # (see first_line).
        self.probe: tuple[dns.name.Name, frozenset[int]] | None = None
        self.text = ""
        # Where the current entry is, for messages: its first line, and when it was cut
        # from one line without _SCAN, that line (columns are found again on error only).
        self.lineno = 0
        self.line_text = ""

    # -- the file ------------------------------------------------------------------------

    def read(self, text: str) -> ZoneFileContents:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text
        special = _SPECIAL.search
        careful = _CAREFUL.search
        size = len(text)
        pos = 0
        lineno = 0
        # Where the next special character is, at or after pos (size: none): one search
        # skips all the plain lines before it.
        next_special = -1
        toks: list[str] = []
        quoted: list[bool] | None = None
        where: list[tuple[int, int, int]] | None = None
        try:
            while pos < size:
                lineno += 1
                end = text.find("\n", pos)
                if end < 0:
                    end = size
                line = text[pos:end]
                if next_special < pos:
                    found = special(text, pos)
                    next_special = size if found is None else found.start()
                if next_special >= end:
                    cut = line.find(";")
                    if cut >= 0:
                        line = line[:cut]
                    toks = line.split()
                    quoted = None
                elif (
                    text[next_special] == '"'
                    and not careful(line, next_special - pos)
                    and (split := _split_quoted(line)) is not None
                ):
                    toks, quoted = split
                else:
                    toks, quoted, where, leading, pos, lineno = self.scan(text, pos, lineno)
                    if not toks:
                        continue
                    self.lineno = where[0][0]
                    self.line_text = ""
                    if not leading and toks[0][:1] == "$" and not quoted[0]:
                        self.directive(toks, quoted)
                    else:
                        self.record(toks, quoted, leading)
                    continue
                pos = end + 1
                if not toks:
                    continue
                where = None
                self.lineno = lineno
                self.line_text = line
                if line[0] == " " or line[0] == "\t":
                    self.record(toks, quoted, True)
                elif toks[0][:1] == "$" and not (quoted and quoted[0]):
                    self.directive(toks, quoted)
                else:
                    self.record(toks, quoted, False)
        except _Bad as bad:
            if where is None:
                where = self.scan(self.line_text, 0, self.lineno)[2]
            line_number, column = _locate(bad.index, where)
            raise ZoneFileError(self.filename, line_number, bad.message, column) from None
        return ZoneFileContents(self.rrsets, self.out_of_zone, self.nodes)

    def scan(
        self, text: str, pos: int, lineno: int
    ) -> tuple[list[str], list[bool], list[tuple[int, int, int]], bool, int, int]:
        """Cut one entry that needs care: escapes, parentheses, unusual characters.

        Returns its tokens, which of them were quoted, their (line, column, length),
        whether the entry starts with white space, where the next entry starts and the
        number of the entry's last line.
        """
        toks: list[str] = []
        quoted: list[bool] = []
        where: list[tuple[int, int, int]] = []
        leading = text[pos] in " \t"
        line_start = pos
        depth = 0
        opened = (0, 0)
        match = _SCAN.match
        while True:
            m = match(text, pos)
            if m is None:
                if depth:
                    raise self.error(*opened, "unbalanced parentheses: '(' is not closed")
                return toks, quoted, where, leading, len(text), lineno
            kind = m.lastgroup
            column = pos - line_start + 1
            end = m.end()
            if kind == "word":
                toks.append(m.group())
                quoted.append(False)
                where.append((lineno, column, end - pos))
            elif kind == "space" or kind == "comment":
                pass
            elif kind == "quoted":
                value = m.group("quoted")
                toks.append(value)
                quoted.append(True)
                where.append((lineno, column, end - pos))
                if "\n" in value:
                    lineno += value.count("\n")
                    line_start = text.rfind("\n", pos, end) + 1
            elif kind == "newline":
                if not depth:
                    return toks, quoted, where, leading, end, lineno
                lineno += 1
                line_start = end
            elif kind == "open":
                if not depth:
                    opened = (lineno, column)
                depth += 1
            elif kind == "close":
                if not depth:
                    raise self.error(lineno, column, "unbalanced parentheses: ')' without '('")
                depth -= 1
            elif kind == "unclosed":
                raise self.error(lineno, column, "quoted string not closed on its line")
            else:
                raise self.error(lineno, column, "backslash at the end of a line")
            pos = end

    def error(self, line: int, column: int, message: str) -> ZoneFileError:
        return ZoneFileError(self.filename, line, message, column)

    # -- directives ----------------------------------------------------------------------

    def directive(self, toks: list[str], quoted: list[bool] | None) -> None:
        word = toks[0].upper()
        if word == "$INCLUDE":
            raise _Bad(0, "$INCLUDE is not allowed")
        if word == "$GENERATE":
            raise _Bad(0, "$GENERATE is not supported: write the records out")
        if word not in ("$TTL", "$ORIGIN"):
            raise _Bad(0, f"unknown directive '{toks[0]}'")
        if len(toks) < 2:
            raise _Bad(1, f"{word} needs a value")
        if len(toks) > 2:
            raise _Bad(2, f"unexpected '{toks[2]}' after the {word} value")
        if quoted and quoted[1]:
            raise _Bad(1, f"the {word} value must not be quoted")
        if word == "$TTL":
            self.default_ttl = _ttl(toks[1], 1, "$TTL value")
            self.default_ttl_from_soa = False
        else:
            # A relative $ORIGIN is relative to the current one (RFC 1035 section 5.1).
            self.set_origin(self.name(toks[1], 1)[0])

    # -- names ---------------------------------------------------------------------------

    def set_origin(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.last_spelling = None
        self.names = self.tables.setdefault(origin.labels, {})
        self.shared: dict[tuple, dict] = {}  # relative names in them depend on the origin
        key = _key(origin.labels)
        self.origin_key = key if isinstance(key, bytes) else None
        self.origin_in_zone = self.in_zone(key, origin)
        self.origin_length = sum(map(len, origin.labels)) + len(origin.labels)
        # The longest label a name below the origin may start with.
        self.label_limit = min(63, 255 - 1 - self.origin_length)

    def in_zone(self, key: Any, name: dns.name.Name) -> bool:
        if isinstance(key, bytes) and self.zone_suffix is not None:
            return key == self.zone_key or key.endswith(self.zone_suffix)
        return name.is_subdomain(self.zone_origin)

    def name(self, text: str, index: int) -> _Entry:
        names = self.names
        entry = names.get(text)
        if entry is None:
            if len(names) >= _REMEMBERED:
                names.clear()
            entry = names[text] = self.new_name(text, index)
        return entry

    def share(self, key: tuple, items: dict) -> dict:
        """Remember the items dict made for data key, to share it with repeats."""
        if len(self.shared) >= _REMEMBERED:
            self.shared.clear()
        self.shared[key] = items
        return items

    def new_name(self, text: str, index: int) -> _Entry:
        origin = self.origin
        if text == "@":
            name = origin
        elif "\\" in text or not text.isascii() or text == ".":
            name = self.dnspython_name(text, index)
        elif "." not in text:
            # The common case: one label below the origin.
            label = text.encode()
            if len(label) > 63:
                raise _Bad(index, f"bad name '{text}': label longer than 63 octets")
            if len(label) + 1 + self.origin_length > 255:
                raise _Bad(index, f"bad name '{text}': longer than 255 octets")
            name = make_name((label, *origin.labels))
            if self.origin_key is not None:
                key = label.lower() + b"." + self.origin_key
                return name, key, self.origin_in_zone or self.in_zone(key, name)
        else:
            absolute = text[-1] == "."
            parts = (text[:-1] if absolute else text).split(".")
            if "" in parts:
                raise _Bad(index, f"bad name '{text}': empty label")
            labels = [part.encode() for part in parts]
            if max(map(len, labels)) > 63:
                raise _Bad(index, f"bad name '{text}': label longer than 63 octets")
            if absolute:
                labels.append(b"")
            else:
                labels.extend(origin.labels)
            if sum(map(len, labels)) + len(labels) > 255:
                raise _Bad(index, f"bad name '{text}': longer than 255 octets")
            name = make_name(tuple(labels))
        key = _key(name.labels)
        return name, key, self.in_zone(key, name)

    def dnspython_name(self, text: str, index: int) -> dns.name.Name:
        """A name with escapes or non-ASCII (IDNA) text, parsed as dnspython's reader does."""
        try:
            return dns.name.from_text(text, self.origin)
        except dns.name.EmptyLabel:
            raise _Bad(index, f"bad name '{text}': empty label") from None
        except dns.name.LabelTooLong:
            raise _Bad(index, f"bad name '{text}': label longer than 63 octets") from None
        except dns.name.NameTooLong:
            raise _Bad(index, f"bad name '{text}': longer than 255 octets") from None
        except dns.name.BadEscape:
            raise _Bad(index, f"bad name '{text}': bad escape") from None
        except (dns.exception.DNSException, UnicodeError, ValueError) as error:
            raise _Bad(index, f"bad name '{text}': {error}") from None

    # -- records -------------------------------------------------------------------------

    def ttl(self, text: str, index: int) -> int:
        """The TTL token at index (each spelling read once), now the last TTL given."""
        ttl = self.ttls.get(text)
        if ttl is None:
            ttl = self.ttls[text] = _ttl(text, index)
        self.last_ttl = ttl
        return ttl

    def record(self, toks: list[str], quoted: list[bool] | None, leading: bool) -> None:
        count = len(toks)
        # Owner, TTL, class and type are never quoted: look no further than a quote.
        limit = count if quoted is None or True not in quoted else quoted.index(True)
        if leading:
            owner = self.last_owner
            k = 0
        else:
            if limit == 0:
                raise _Bad(0, "the owner name must not be quoted")
            text = toks[0]
            if text == self.last_spelling:
                owner = self.last_owner
            else:
                owner = self.last_owner = self.owner(text)
                self.last_spelling = text
            k = 1
        if not owner[1]:
            self.out_of_zone.append((self.lineno, self.owner_name(owner)))
            return

        # [TTL] [class] type, or [class] [TTL] type
        if k >= limit:
            raise _no_type(k, count)
        text = toks[k]
        ttl = None
        if "0" <= text[:1] <= "9":
            ttl = self.ttl(text, k)
            k += 1
            if k >= limit:
                raise _no_type(k, count)
            text = toks[k]
        rdclass = _CLASS_WORDS.get(text)
        if rdclass is None and text not in self.types:
            rdclass = _class_of(text)
        if rdclass is not None:
            if rdclass != IN:
                raise _Bad(k, f"class {text} records cannot be in an IN zone")
            k += 1
            if k >= limit:
                raise _no_type(k, count)
            text = toks[k]
            if ttl is None and "0" <= text[:1] <= "9":
                ttl = self.ttl(text, k)
                k += 1
                if k >= limit:
                    raise _no_type(k, count)
                text = toks[k]
        rdtype = self.types.get(text)
        if rdtype is None:
            rdtype = self.type_of(text, k)
        type_index = k
        k += 1

        build = _BUILDERS.get(rdtype)
        if build is not None and (
            quoted is None
            # a line cut without _SCAN has no escapes, and TXT data may be quoted
            or (rdtype == _TXT and self.line_text)
            or _plain(toks, quoted, k, rdtype)
        ):
            items = build(self, toks, k, rdtype)
            shared = rdtype in _SHARED  # items is kept by the builder for repeats
            covers = _NONE
        else:
            rd = self.generic(toks, quoted, k, rdtype)
            items = {rd: None}
            shared = False
            covers = rd.covers()

        if ttl is None:
            # dns.zonefile.Reader._implicit_ttl: $TTL, else the last TTL stated, else
            # the SOA minimum.
            ttl = self.last_ttl
            if ttl is None or (self.default_ttl is not None and not self.default_ttl_from_soa):
                ttl = self.default_ttl
        if rdtype == _SOA:
            if owner[0] != self.zone_origin:
                name = self.owner_name(owner)
                raise _Bad(type_index, f"SOA record of {name} is not at the zone apex")
            if self.default_ttl is None:
                # Before RFC 2308 the SOA minimum was the zone's default TTL; dnspython
                # still uses it when there is no $TTL.
                minimum = next(iter(items)).minimum
                self.default_ttl = minimum
                self.default_ttl_from_soa = True
                if ttl is None:
                    ttl = self.last_ttl if self.last_ttl is not None else minimum
        if ttl is None:
            raise _Bad(type_index, "no TTL for this record and no $TTL before it")

        name = owner[0]
        probe = self.probe
        if probe is not None and name == probe[0] and (rdtype | covers << 16) in probe[1]:
            raise _Found(self.lineno)
        covering = covers != _NONE or rdtype in _COVERING
        fresh: dict[int, dns.rrset.RRset] = {}
        node = self.nodes.setdefault(name, fresh)  # one hash of name, new or not
        if node is fresh:  # most records start a name: new_rrset written out
            if owner[2]:
                self.owner_name(owner)  # raises: the label is too long
            rrset = make_rrset(name, rdtype, covers, ttl, self.own(items) if shared else items)
            self.rrsets.append(rrset)
            node[rdtype] = rrset
            if covering:
                self.covering[name] = [rrset]
            return
        if covering:
            for rrset in self.covering.get(name, ()):
                if rrset.rdtype == rdtype and rrset.covers == covers:
                    break
            else:
                rrset = None
        else:
            rrset = node.get(rdtype)
        if rrset is None:
            others = self.node_rrsets(name, node)
            self.check_kind(name, others, rdtype, covers, type_index)
            # dnspython names the RRsets of a node as its first record did.
            rrset = self.new_rrset(others[0].name, rdtype, covers, ttl, items, shared)
            # As Zone() indexes RRsets: by type, the last one made (RRSIGs) winning.
            node[rdtype] = rrset
            if covering:
                self.covering.setdefault(name, []).append(rrset)
            return
        if ttl < rrset.ttl:
            rrset.ttl = ttl
        if rdtype in _SINGLETONS:
            rd = next(iter(items))
            if rd not in rrset:
                line = self.first_line(name, {rdtype | covers << 16})
                raise _Bad(
                    type_index,
                    f"{rrset.name} has a second {rdtype.name} record, but at most one"
                    f" is allowed (see line {line})",
                )
            # The same record again: dnspython keeps the later spelling.
            if _OWN_ITEMS:
                rrset.items = items
                if shared:
                    self.shared_items.add(id(items))
            else:
                rrset.clear()
                rrset.add(rd)
            return
        if _OWN_ITEMS:
            mine = rrset.items
            if id(mine) in self.shared_items:
                mine = rrset.items = mine.copy()
            mine.update(items)  # reuses the hash computed for items
        else:
            for rd in items:
                rrset.add(rd)

    def new_rrset(
        self, name: dns.name.Name, rdtype: RT, covers: RT, ttl: int, items: dict, shared: bool
    ) -> dns.rrset.RRset:
        rrset = make_rrset(name, rdtype, covers, ttl, self.own(items) if shared else items)
        self.rrsets.append(rrset)
        return rrset

    def own(self, items: dict) -> dict:
        """The items dict for a new RRset, from one the builders keep for repeated data."""
        if _OWN_ITEMS:
            # Served RRsets are never modified, so RRsets of the same data at many names
            # can hold one items dict (copied should a record be added while reading).
            self.shared_items.add(id(items))
            return items
        return items.copy()

    def node_rrsets(
        self, name: dns.name.Name, node: dict[int, dns.rrset.RRset]
    ) -> list[dns.rrset.RRset]:
        """Every RRset at a name, RRSIGs that node does not index included."""
        rrsets = list(node.values())
        indexed = set(map(id, rrsets))
        rrsets += [r for r in self.covering.get(name, ()) if id(r) not in indexed]
        return rrsets

    def check_kind(
        self,
        name: dns.name.Name,
        others: list[dns.rrset.RRset],
        rdtype: RT,
        covers: RT,
        index: int,
    ) -> None:
        """No CNAME beside other data (RFC 1034 section 3.6.2), as dnspython checks."""
        kind = _kind(rdtype, covers)
        if kind is _NEUTRAL or all(
            _kind(rrset.rdtype, rrset.covers) in (kind, _NEUTRAL) for rrset in others
        ):
            return
        clash = {
            rrset.rdtype | rrset.covers << 16
            for rrset in others
            if _kind(rrset.rdtype, rrset.covers) not in (kind, _NEUTRAL)
        }
        if clash:
            line = self.first_line(name, clash)
            spelled = others[0].name
            raise _Bad(index, f"{spelled} has a CNAME and other records (see line {line})")

    def first_line(self, name: dns.name.Name, type_keys: set[int]) -> int | None:
        """The line of the first record at name of one of these types: we read the file
        again rather than remember a line for every record."""
        reader = _Reader(self.zone_origin, self.filename)
        reader.probe = (name, frozenset(type_keys))
        try:
            reader.read(self.text)
        except _Found as found:
            return found.line
        except ZoneFileError:
            pass
        return None

    def owner(self, text: str) -> _Owner:
        """The owner a record's first token names. Most are one plain label below the
        origin, seen once: their Names are made here directly, not kept in names."""
        entry = self.names.get(text)
        if entry is None:
            if "." in text or "\\" in text or text == "@" or not text.isascii():
                entry = self.name(text, 0)
            else:
                label = text.encode()
                name = make_name((label, *self.origin.labels))
                in_zone = self.origin_in_zone or name.is_subdomain(self.zone_origin)
                bad = len(label) > self.label_limit
                return name, in_zone, bad
        return entry[0], entry[2], False

    def owner_name(self, owner: _Owner) -> dns.name.Name:
        """The owner's Name, once it is used: with the error its spelling deserves."""
        name = owner[0]
        if owner[2]:
            text = name.labels[0].decode()
            if len(name.labels[0]) > 63:
                raise _Bad(0, f"bad name '{text}': label longer than 63 octets")
            raise _Bad(0, f"bad name '{text}': longer than 255 octets")
        return name

    def type_of(self, text: str, index: int) -> RT:
        try:
            rdtype = dns.rdatatype.from_text(text)
        except (dns.exception.DNSException, ValueError):
            raise _Bad(index, f"unknown record type '{text}'") from None
        if dns.rdatatype.is_metatype(rdtype):
            raise _Bad(index, f"record type {text} cannot be in a zone file")
        self.types[text] = rdtype
        return rdtype

    # -- record data ---------------------------------------------------------------------

    def rdata_a(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) != k + 1:
            _fields(toks, k, rdtype, ("IPv4 address",))
        text = toks[k]
        try:
            _inet_pton(_AF_INET, text)
        except (OSError, ValueError, UnicodeError):
            raise _Bad(k, f"bad IPv4 address '{text}'") from None
        return {make_a(text): None}  # inet_pton takes nothing but the canonical form

    def rdata_aaaa(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) != k + 1:
            _fields(toks, k, rdtype, ("IPv6 address",))
        text = toks[k]
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except (OSError, ValueError, UnicodeError):
            raise _Bad(k, f"bad IPv6 address '{text}'") from None
        # glibc's inet_ntop and dnspython's inet_ntoa both come from BIND's: same text.
        return {make_aaaa(socket.inet_ntop(socket.AF_INET6, packed)): None}

    def rdata_target(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) != k + 1:
            _fields(toks, k, rdtype, (_TARGET_FIELD.get(rdtype, "target name"),))
        if rdtype not in _SHARED:
            return {TARGET_MAKERS[rdtype](self.name(toks[k], k)[0]): None}
        key = (rdtype, toks[k])
        items = self.shared.get(key)
        if items is None:
            items = self.share(key, {TARGET_MAKERS[rdtype](self.name(toks[k], k)[0]): None})
        return items

    def rdata_mx(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) != k + 2:
            _fields(toks, k, rdtype, ("preference", "mail exchange"))
        key = (rdtype, toks[k], toks[k + 1])
        items = self.shared.get(key)
        if items is None:
            preference = _uint(toks[k], k, "MX preference", 65535)
            rd = make_mx(preference, self.name(toks[k + 1], k + 1)[0])
            items = self.share(key, {rd: None})
        return items

    def rdata_srv(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) != k + 4:
            _fields(toks, k, rdtype, ("priority", "weight", "port", "target"))
        key = (rdtype, *toks[k:])
        items = self.shared.get(key)
        if items is None:
            rd = make_srv(
                _uint(toks[k], k, "SRV priority", 65535),
                _uint(toks[k + 1], k + 1, "SRV weight", 65535),
                _uint(toks[k + 2], k + 2, "SRV port", 65535),
                self.name(toks[k + 3], k + 3)[0],
            )
            items = self.share(key, {rd: None})
        return items

    def rdata_soa(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) != k + 7:
            _fields(toks, k, rdtype, _SOA_FIELDS)
        rd = make_soa(
            self.name(toks[k], k)[0],
            self.name(toks[k + 1], k + 1)[0],
            _uint(toks[k + 2], k + 2, "SOA serial", MAX_TTL),
            _ttl(toks[k + 3], k + 3, "SOA refresh"),
            _ttl(toks[k + 4], k + 4, "SOA retry"),
            _ttl(toks[k + 5], k + 5, "SOA expire"),
            _ttl(toks[k + 6], k + 6, "SOA minimum"),
        )
        return {rd: None}

    def rdata_txt(self, toks: list[str], k: int, rdtype: RT) -> dict:
        if len(toks) == k:
            raise _Bad(k, "missing text in TXT record")
        strings = self.strings
        values = []
        for index in range(k, len(toks)):
            value = toks[index].encode()
            if len(value) > 255:
                raise _Bad(index, f"TXT string of {len(value)} octets (at most 255)")
            shared = strings.get(value)
            if shared is None:  # SPF and the like repeat
                if len(strings) >= _REMEMBERED:
                    strings.clear()
                shared = strings[value] = value
            values.append(shared)
        return {make_txt(tuple(values)): None}

    def generic(
        self, toks: list[str], quoted: list[bool] | None, k: int, rdtype: RT
    ) -> dns.rdata.Rdata:
        """Any other type (or data with escapes): dnspython parses the tokens we cut."""
        identifier, string = dns.tokenizer.IDENTIFIER, dns.tokenizer.QUOTED_STRING
        tokens = [
            dns.tokenizer.Token(
                string if quoted and quoted[index] else identifier, toks[index], "\\" in toks[index]
            )
            for index in range(k, len(toks))
        ]
        feed = _TokenFeed(tokens)
        type_text = dns.rdatatype.to_text(rdtype)
        try:
            return dns.rdata.from_text(IN, rdtype, feed, self.origin, False)
        except dns.exception.SyntaxError as error:
            if feed.next > len(tokens):
                raise _Bad(len(toks), f"incomplete {type_text} record") from None
            # The parser stopped at the last token it read (for data it joins, such as
            # base64, the last token of it).
            last = max(feed.next - 1, 0)
            message = str(error) if error.args else ""
            if message.startswith("expected EOL or EOF"):
                raise _Bad(
                    k + last, f"unexpected '{toks[k + last]}' after the {type_text} record data"
                ) from None
            if message in _VAGUE or isinstance(error, dns.exception.UnexpectedEnd):
                raise _Bad(k + last, f"bad {type_text} record data '{toks[k + last]}'") from None
            raise _Bad(k + last, f"bad {type_text} record: {message}") from None


_BUILDERS: dict[RT, Callable[[_Reader, list[str], int, RT], dict]] = {
    RT.A: _Reader.rdata_a,
    RT.AAAA: _Reader.rdata_aaaa,
    RT.NS: _Reader.rdata_target,
    RT.CNAME: _Reader.rdata_target,
    RT.DNAME: _Reader.rdata_target,
    RT.PTR: _Reader.rdata_target,
    RT.MX: _Reader.rdata_mx,
    RT.SRV: _Reader.rdata_srv,
    RT.SOA: _Reader.rdata_soa,
    RT.TXT: _Reader.rdata_txt,
}


def _kind(rdtype: RT, covers: RT) -> dns.node.NodeKind:
    type_key = rdtype | covers << 16
    kind = _KINDS.get(type_key)
    if kind is None:
        kind = _KINDS[type_key] = dns.node.NodeKind.classify(rdtype, covers)
    return kind


def _locate(index: int, where: list[tuple[int, int, int]]) -> tuple[int, int]:
    """Line and column of token ``index``, or of the end of the last one."""
    if index < len(where):
        return where[index][:2]
    line, column, length = where[-1]
    return line, column + length


def _no_type(k: int, count: int) -> _Bad:
    if k == count:
        return _Bad(k, "missing record type")
    return _Bad(k, "a quoted string where the record type should be")


def _plain(toks: list[str], quoted: list[bool], k: int, rdtype: RT) -> bool:
    """Whether the fast builders can take this data (no escapes, no quotes but in TXT)."""
    for index in range(k, len(toks)):
        if "\\" in toks[index] or (quoted[index] and rdtype != _TXT):
            return False
    return True


def _fields(toks: list[str], k: int, rdtype: RT, names: tuple[str, ...]) -> None:
    have = len(toks) - k
    if have < len(names):
        raise _Bad(len(toks), f"missing {names[have]} in {rdtype.name} record")
    if have > len(names):
        extra = k + len(names)
        raise _Bad(extra, f"unexpected '{toks[extra]}' after the {rdtype.name} record data")


def _class_of(text: str) -> int | None:
    """The class a token names (IN, CH, CLASS1...), or None if it is no class."""
    rdclass = _CLASSES.get(text.upper())
    if rdclass is None and text[:5].upper() == "CLASS":
        try:
            rdclass = dns.rdataclass.from_text(text)
        except (dns.exception.DNSException, ValueError):
            return None
    return rdclass


def paren_depth(line: str, depth: int) -> int:
    """depth after line: parentheses let a record span lines (RFC 1035 5.1); those in
    quotes, in a comment or after a backslash do not count."""
    if "(" not in line and ")" not in line:
        return depth
    quoted = escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == ";":
            break
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
    return depth
