"""TSIG keys: the key-name grammar, access decisions and `_keys` files.

Pure: no Twisted, no I/O, no clock.  Callers hand in file contents and names and
get back values; every access decision goes through `may`.

Secrets never reach a log line: `Key` (and the dnspython keys built from it) elide
the secret in repr(), and no warning or error message echoes a token that could
be key material.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.tsig
import dns.ttl

from gitdns.zonefile import paren_depth

# --------------------------------------------------------------------------
# Operations and the key-name grammar


class Operation(enum.Enum):
    """What a key may be allowed to do; the value is the label naming it."""

    UPDATE = "_update"
    TRANSFER = "_transfer"
    NOTIFY = "_notify"


_OPERATION_BY_LABEL = {op.value.encode(): op for op in Operation}

# A stronger operation implies the weaker ones (SPEC "Key names and access").
_GRANTS: Mapping[Operation, frozenset[Operation]] = {
    Operation.UPDATE: frozenset(Operation),
    Operation.TRANSFER: frozenset({Operation.TRANSFER, Operation.NOTIFY}),
    Operation.NOTIFY: frozenset({Operation.NOTIFY}),
}


@dataclass(frozen=True)
class KeyRole:
    """What a key name says: its operation, its zone and (maybe) addresses.

    `primary`/`secondary` come from address labels in `_transfer`/`_update`
    key names; they tell a secondary where its primary is and a primary whom
    to NOTIFY.
    """

    operation: Operation
    zone: dns.name.Name
    primary: ipaddress.IPv4Address | None = None
    secondary: ipaddress.IPv4Address | None = None

    def grants(self, operation: Operation, zone: dns.name.Name) -> bool:
        """True if this role allows `operation` on `zone`."""
        _require_absolute(zone, "zone")
        return operation in _GRANTS[self.operation] and zone.is_subdomain(self.zone)


def key_role(key_name: dns.name.Name) -> KeyRole | None:
    """Parse a key name; None when it has no operation label (grants nothing).

    The operation label nearest the root counts, so `a._update.b._transfer.c.`
    is a transfer key for `c.`: whoever controls names below a zone cannot mint
    keys for a zone further up.
    """
    _require_absolute(key_name, "key name")
    labels = key_name.labels
    # labels[-1] is the root label; search leftwards from the one before it.
    for index in range(len(labels) - 2, -1, -1):
        operation = _OPERATION_BY_LABEL.get(labels[index].lower())
        if operation is not None:
            break
    else:
        return None
    zone = dns.name.Name(labels[index + 1 :])
    primary = secondary = None
    if operation in (Operation.UPDATE, Operation.TRANSFER):
        primary, secondary = _addresses(labels[:index])
    return KeyRole(operation, zone, primary, secondary)


def _addresses(
    left_of_operation: tuple[bytes, ...],
) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv4Address | None]:
    """Primary and secondary IPv4 addresses encoded in labels left of the op label.

    Eight (or more) octet labels directly left of the op: the nearest eight are
    primary a.b.c.d then secondary e.f.g.h (as OCaml-DNS reads them).  Exactly
    four: primary only (a hidden secondary).  Any other count is ambiguous and
    yields no address.
    """
    run = 0
    for label in reversed(left_of_operation):
        if _octet(label) is None:
            break
        run += 1
    if run >= 8:
        return _ipv4(left_of_operation[-8:-4]), _ipv4(left_of_operation[-4:])
    if run == 4:
        return _ipv4(left_of_operation[-4:]), None
    return None, None


def _octet(label: bytes) -> int | None:
    # Decimal only; leading zeros are read as decimal, never octal.
    if not 1 <= len(label) <= 3 or not label.isdigit():
        return None
    value = int(label)
    return value if value <= 255 else None


def _ipv4(labels: tuple[bytes, ...]) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(bytes(_octet(label) or 0 for label in labels))


def may(key_name: dns.name.Name, operation: Operation, zone: dns.name.Name) -> bool:
    """May the key called `key_name` do `operation` on `zone`?  (Names are absolute.)

    The single access decision of gitdns: a key for zone Z grants its operations
    for Z and every zone below Z; a key at the root for every zone.
    """
    role = key_role(key_name)
    return role is not None and role.grants(operation, zone)


def _require_absolute(name: dns.name.Name, what: str) -> None:
    # A relative name here is a programming error: guessing an origin could
    # silently widen or narrow access.
    if not name.is_absolute():
        raise ValueError(f"{what} {name} is not absolute")


# --------------------------------------------------------------------------
# Algorithms


@dataclass(frozen=True)
class _Algorithm:
    name: dns.name.Name  # dnspython's TSIG constant, what goes on the wire
    number: int  # DNSKEY algorithm number used in `_keys` files
    short: str  # command-line spelling, `NAME:SHA256:SECRET`
    size: int  # digest size in bytes = the recommended secret size


_ALGORITHMS = (
    _Algorithm(dns.tsig.HMAC_SHA1, 161, "SHA1", 20),
    _Algorithm(dns.tsig.HMAC_SHA224, 162, "SHA224", 28),
    _Algorithm(dns.tsig.HMAC_SHA256, 163, "SHA256", 32),
    _Algorithm(dns.tsig.HMAC_SHA384, 164, "SHA384", 48),
    _Algorithm(dns.tsig.HMAC_SHA512, 165, "SHA512", 64),
)
_BY_NAME = {a.name: a for a in _ALGORITHMS}
_BY_NUMBER = {a.number: a for a in _ALGORITHMS}
_BY_SHORT = {a.short.lower(): a for a in _ALGORITHMS}
_MD5_NUMBER = 157
_NUMBERS_TEXT = "161 (SHA1) to 165 (SHA512)"


def algorithm_from_text(text: str) -> dns.name.Name:
    """`SHA256`, `hmac-sha256`, `hmac-sha256.` or `163` -> dns.tsig.HMAC_SHA256.

    Raises ValueError for HMAC-MD5 (refused) and anything unknown.
    """
    return _algorithm_from_text(text).name


def _algorithm_from_text(text: str) -> _Algorithm:
    spelled = text.strip().lower().rstrip(".")
    if spelled.isdigit():
        found = _BY_NUMBER.get(int(spelled))
    else:
        found = _BY_SHORT.get(spelled.removeprefix("hmac-"))
    if found is not None:
        return found
    if spelled in {str(_MD5_NUMBER), "md5", "hmac-md5", "hmac-md5.sig-alg.reg.int"}:
        raise ValueError("HMAC-MD5 is refused for TSIG; use SHA256")
    raise ValueError(
        f"unknown TSIG algorithm {text.strip()!r}: use SHA1, SHA224, SHA256, SHA384, "
        f"SHA512 (or hmac-sha256 style, or {_NUMBERS_TEXT})"
    )


def secret_size(algorithm: dns.name.Name) -> int:
    """Bytes of secret to generate for `algorithm` (its digest size, RFC 8945 6)."""
    return _known_algorithm(algorithm).size


def _known_algorithm(algorithm: dns.name.Name) -> _Algorithm:
    found = _BY_NAME.get(algorithm)
    if found is None:
        raise ValueError(f"unsupported TSIG algorithm {algorithm}")
    return found


# --------------------------------------------------------------------------
# Keys


@dataclass(frozen=True, repr=False)
class Key:
    """A TSIG key: absolute name, dnspython algorithm constant, raw secret."""

    name: dns.name.Name
    algorithm: dns.name.Name
    secret: bytes

    def __post_init__(self) -> None:
        _require_absolute(self.name, "key name")
        _known_algorithm(self.algorithm)
        if not self.secret:
            raise ValueError(f"key {self.name} has an empty secret")

    def __repr__(self) -> str:
        # The secret is elided so that logging a key can never leak it.
        return f"Key(name='{self.name}', algorithm='{self.algorithm}', secret=<elided>)"

    @functools.cached_property
    def role(self) -> KeyRole | None:
        """Operation, zone and addresses from the name (None: grants nothing); read once
        per key (start-up asks it for every key and every zone)."""
        return key_role(self.name)

    def tsig_key(self) -> dns.tsig.Key:
        """The dnspython key, for signing and for dns.message.from_wire."""
        return _QuietTsigKey(self.name, self.secret, self.algorithm)


class _QuietTsigKey(dns.tsig.Key):
    # dnspython's Key.__repr__ prints the secret in base64; ours does not.
    def __repr__(self) -> str:
        return f"<DNS key name='{self.name}', algorithm='{self.algorithm}', secret=<elided>>"


def tsig_keyring(keys: Iterable[Key]) -> dict[dns.name.Name, dns.tsig.Key]:
    """A keyring for dns.message.from_wire(keyring=...) and friends.

    dns.name.Name hashes case-insensitively, so lookups by wire name just work.
    """
    return {key.name: key.tsig_key() for key in keys}


def parse_key_argument(text: str) -> Key:
    """`NAME:ALG:BASE64` from the command line, e.g. `x._update.mirage:SHA256:kJJq...=`.

    Raises ValueError; messages never contain the secret.
    """
    parts = text.rsplit(":", 2)  # base64 and ALG contain no colon, the name might
    if len(parts) != 3 or not parts[0]:
        raise ValueError("a key must be given as NAME:ALG:BASE64 (e.g. x._update.zone:SHA256:...)")
    name_text, algorithm_text, secret_text = parts
    try:
        name = dns.name.from_text(name_text)
    except dns.exception.DNSException as e:
        raise ValueError(f"key name {name_text!r} is not a domain name: {e}") from None
    algorithm = _algorithm_from_text(algorithm_text)
    secret = _decode_secret(secret_text.strip())
    if secret is None:
        raise ValueError(f"the secret of key {name} is not valid base64")
    if not secret:
        raise ValueError(f"the secret of key {name} is empty")
    return Key(name, algorithm.name, secret)


def _decode_secret(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


@dataclass(frozen=True, repr=False)
class NewKeyText:
    """The three spellings of a freshly generated key printed by `gitdns keygen`."""

    dnskey_line: str  # for a `_keys` file in the repository
    argument: str  # NAME:ALG:SECRET for --key on the command line
    bind_clause: str  # `key "NAME" { ... };` for named.conf

    def __str__(self) -> str:
        return "\n".join([self.dnskey_line, self.argument, self.bind_clause])

    def __repr__(self) -> str:
        return "NewKeyText(<elided>)"


def format_new_key(name: str, algorithm: str = "hmac-sha256", *, secret: bytes) -> NewKeyText:
    """Format a new key; the caller draws `secret` (os.urandom(secret_size(...))).

    Refuses names without an operation label: such a key would grant nothing.
    """
    try:
        key_name = dns.name.from_text(name)
    except dns.exception.DNSException as e:
        raise ValueError(f"key name {name!r} is not a domain name: {e}") from None
    chosen = _algorithm_from_text(algorithm)
    key = Key(key_name, chosen.name, secret)
    if key.role is None:
        raise ValueError(
            f"key name {key_name} grants nothing: it needs an _update, _transfer or "
            "_notify label, e.g. laptop._update.example.com"
        )
    encoded = base64.b64encode(secret).decode("ascii")
    bare_name = key_name.to_text(omit_final_dot=True)
    bind_algorithm = chosen.name.to_text(omit_final_dot=True)
    return NewKeyText(
        dnskey_line=f"{key_name} DNSKEY 0 3 {chosen.number} {encoded}",
        argument=f"{bare_name}:{chosen.short}:{encoded}",
        bind_clause=(
            f'key "{bare_name}" {{\n\talgorithm {bind_algorithm};\n\tsecret "{encoded}";\n}};'
        ),
    )


# --------------------------------------------------------------------------
# Key files

_KEY_FILE = "_keys"


def is_key_file(name: str) -> bool:
    """Is this repository root file a key file (`_keys` or `<domain>._keys`)?

    Case-insensitive, so that `Mirage._KEYS` can never be mistaken for a zone
    and its secrets served.
    """
    lowered = name.lower()
    return lowered == _KEY_FILE or lowered.endswith("." + _KEY_FILE)


def key_file_domain(name: str) -> dns.name.Name:
    """`mirage._keys` -> `mirage.`, `_keys` -> the root.  ValueError if not a key file."""
    if not is_key_file(name):
        raise ValueError(f"{name} is not a key file name")
    prefix = name[: -len(_KEY_FILE)]  # "" or "<domain>."
    if not prefix:
        return dns.name.root
    try:
        domain = dns.name.from_text(prefix)
    except dns.exception.DNSException as e:
        raise ValueError(f"{name} does not name a domain: {e}") from None
    if domain == dns.name.root:  # "._keys" must not pass for "_keys"
        raise ValueError(f"{name} does not name a domain")
    return domain


@dataclass(frozen=True)
class LoadedKey:
    """A key together with where it was read, for warnings and for keeping old keys."""

    file: str
    line: int
    key: Key


@dataclass(frozen=True)
class KeyLoad:
    """The outcome of reading all key files.

    `keyring` holds the usable keys; `warnings` are `file:line: message` strings;
    `by_file` remembers which keys each file gave, so that a file that cannot be
    read next time keeps its last good keys.
    """

    keyring: Mapping[dns.name.Name, Key]
    warnings: list[str]
    by_file: Mapping[str, tuple[LoadedKey, ...]]

    def tsig_keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return tsig_keyring(self.keyring.values())


def load_keys(files: Mapping[str, bytes], previous: KeyLoad | None = None) -> KeyLoad:
    """Read key files (root file name -> content); other file names are skipped.

    A bad line is a warning and the other lines still load.  A file that cannot
    be decoded at all keeps the keys it gave in `previous`.  A name with more
    than one DNSKEY, in one file or across files, loses all its keys.
    """
    by_file: dict[str, tuple[LoadedKey, ...]] = {}
    warnings: list[tuple[str, int, str]] = []
    for file_name in sorted(files):
        if not is_key_file(file_name):
            continue
        try:
            domain = key_file_domain(file_name)
        except ValueError as e:
            warnings.append((file_name, 1, f"{e}; no keys loaded from it"))
            continue
        content = files[file_name]
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = content[: e.start].count(b"\n") + 1
            kept = previous.by_file.get(file_name, ()) if previous is not None else ()
            if kept:
                by_file[file_name] = kept
                outcome = f"kept the {len(kept)} key(s) of its last good version"
            else:
                outcome = "no keys loaded from it"
            warnings.append((file_name, line, f"not valid UTF-8; {outcome}"))
            continue
        reader = _KeyFileReader(file_name, domain)
        reader.read(text)
        by_file[file_name] = tuple(reader.keys)
        warnings.extend(reader.warnings)
    keyring = _merge(by_file, warnings)
    warnings.sort(key=lambda warning: (warning[0], warning[1]))  # stable: same line keeps order
    return KeyLoad(
        keyring=keyring,
        warnings=[f"{file}:{line}: {message}" for file, line, message in warnings],
        by_file=by_file,
    )


def _merge(
    by_file: Mapping[str, tuple[LoadedKey, ...]], warnings: list[tuple[str, int, str]]
) -> dict[dns.name.Name, Key]:
    # One DNSKEY per name: with two different ones we cannot know which is meant,
    # so neither is trusted.  An exact repeat is harmless and kept once.
    by_name: dict[dns.name.Name, list[LoadedKey]] = {}
    for file_name in sorted(by_file):
        for loaded in by_file[file_name]:
            by_name.setdefault(loaded.key.name, []).append(loaded)
    keyring: dict[dns.name.Name, Key] = {}
    for name, found in by_name.items():
        first = found[0]
        distinct = {(loaded.key.algorithm, loaded.key.secret) for loaded in found}
        if len(distinct) == 1:
            keyring[name] = first.key
            for repeat in found[1:]:
                warnings.append(
                    (
                        repeat.file,
                        repeat.line,
                        f"{repeat.key.name} repeats the DNSKEY of {first.file}:{first.line}",
                    )
                )
            continue
        for loaded in found:
            others = ", ".join(
                f"{other.file}:{other.line}" for other in found if other is not loaded
            )
            warnings.append(
                (
                    loaded.file,
                    loaded.line,
                    f"{loaded.key.name} has more than one DNSKEY (also {others}); "
                    "all its keys are ignored",
                )
            )
    return keyring


class _BadRecord(Exception):
    """A line to skip, with a message that is safe to log (no key material)."""


class _KeyFileReader:
    """Reads one key file record by record, so a bad record costs only itself.

    Master-file syntax: `$ORIGIN`, `$TTL`, comments, parentheses spanning lines,
    owner omitted on indented lines.  `$INCLUDE` is never honoured: it would let
    a repository read files of the server.
    """

    def __init__(self, file_name: str, domain: dns.name.Name) -> None:
        self.file_name = file_name
        self.domain = domain
        self.origin = domain
        self.last_owner: dns.name.Name | None = None
        self.keys: list[LoadedKey] = []
        self.warnings: list[tuple[str, int, str]] = []

    def read(self, text: str) -> None:
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        index = 0
        while index < len(lines):
            end = _record_end(lines, index)
            line_number = index + 1
            if end is None:
                # An unclosed "(": report it, then read the next lines on their own
                # rather than losing the rest of the file.
                self._warn(line_number, "unbalanced parentheses; record ignored")
                index += 1
                continue
            try:
                self._record("\n".join(lines[index:end]), line_number)
            except _BadRecord as e:
                self._warn(line_number, str(e))
            index = end

    def _warn(self, line: int, message: str) -> None:
        self.warnings.append((self.file_name, line, message))

    def _record(self, text: str, line_number: int) -> None:
        tokens = dns.tokenizer.Tokenizer(text)
        try:
            first = tokens.get(want_leading=True)
            if first.is_eol_or_eof():
                return
            if first.is_whitespace():
                following = tokens.get()
                if following.is_eol_or_eof():
                    return  # blank or comment-only line
                tokens.unget(following)
                if self.last_owner is None:
                    raise _BadRecord("record without owner name (nothing before it to repeat)")
                owner = self.last_owner
            elif first.is_identifier() and first.value.startswith("$"):
                self._directive(first.value, tokens)
                return
            else:
                owner = self._name(first, "owner name")
                self.last_owner = owner
            key = self._dnskey(owner, tokens)
        except dns.exception.DNSException as e:
            # Tokenizer errors (unbalanced ")", unterminated quote) carry no token text.
            raise _BadRecord(f"syntax error: {e}") from None
        self._accept(key, line_number)

    def _accept(self, key: Key, line_number: int) -> None:
        if not key.name.is_subdomain(self.domain):
            raise _BadRecord(
                f"{key.name} is outside {self.domain}, the domain of this key file; ignored"
            )
        role = key.role
        if role is None:
            self._warn(
                line_number,
                f"{key.name} has no _update, _transfer or _notify label: it grants nothing",
            )
        elif not role.zone.is_subdomain(self.domain):
            # e.g. `x._transfer.` written in `_transfer._keys`: the name is inside
            # the file's domain but would grant for zones above it.
            raise _BadRecord(
                f"{key.name} grants access to {role.zone}, outside {self.domain}, "
                "the domain of this key file; ignored"
            )
        self.keys.append(LoadedKey(self.file_name, line_number, key))

    def _directive(self, directive: str, tokens: dns.tokenizer.Tokenizer) -> None:
        keyword = directive.upper()
        if keyword == "$ORIGIN":
            origin = self._name(tokens.get(), "$ORIGIN name")
            self._end(tokens)
            self.origin = origin
        elif keyword == "$TTL":
            ttl = tokens.get()
            if not ttl.is_identifier():
                raise _BadRecord("$TTL needs a TTL")
            try:
                dns.ttl.from_text(ttl.value)
            except dns.exception.DNSException:
                raise _BadRecord("bad $TTL value") from None
            self._end(tokens)
        elif keyword == "$INCLUDE":
            raise _BadRecord("$INCLUDE is not allowed in key files; ignored")
        elif keyword == "$GENERATE":
            raise _BadRecord("$GENERATE is not supported in key files; ignored")
        else:
            raise _BadRecord("unknown $ directive; ignored")

    def _name(self, token: dns.tokenizer.Token, what: str) -> dns.name.Name:
        # The offending text is not echoed: a misplaced secret could be it.
        if not token.is_identifier():
            raise _BadRecord(f"expected {what}")
        try:
            return dns.name.from_text(token.value, self.origin)
        except (dns.exception.DNSException, ValueError) as e:  # IDNA errors too
            raise _BadRecord(f"bad {what}: {e}") from None

    def _dnskey(self, owner: dns.name.Name, tokens: dns.tokenizer.Tokenizer) -> Key:
        token = tokens.get()
        seen_ttl = seen_class = False
        # `[TTL] [CLASS] TYPE` in either order, as in any master file.
        while True:
            if not token.is_identifier():
                raise _BadRecord("expected a record type")
            if not seen_ttl and token.value[:1].isdigit():
                try:
                    dns.ttl.from_text(token.value)
                except dns.exception.DNSException:
                    raise _BadRecord("bad TTL") from None
                seen_ttl = True
            elif not seen_class and _is_class(token.value):
                if dns.rdataclass.from_text(token.value) != dns.rdataclass.IN:
                    raise _BadRecord("only class IN is supported")
                seen_class = True
            else:
                break
            token = tokens.get()
        try:
            rdtype = dns.rdatatype.from_text(token.value)
        except dns.exception.DNSException:
            raise _BadRecord("expected a record type (DNSKEY)") from None
        if rdtype != dns.rdatatype.DNSKEY:
            raise _BadRecord(
                f"{dns.rdatatype.to_text(rdtype)} record ignored: "
                "key files hold only DNSKEY records"
            )
        # Flags and protocol are read but not enforced: keys written as
        # `0 3` and old BIND-style `512 3` both appear in the wild.
        self._number(tokens, "DNSKEY flags", 0xFFFF)
        self._number(tokens, "DNSKEY protocol", 0xFF)
        number = self._number(tokens, "DNSKEY algorithm", 0xFF)
        algorithm = _BY_NUMBER.get(number)
        if number == _MD5_NUMBER:
            raise _BadRecord("algorithm 157 (HMAC-MD5) is refused for TSIG; ignored")
        if algorithm is None:
            raise _BadRecord(
                f"algorithm {number} is not a TSIG HMAC algorithm ({_NUMBERS_TEXT}); ignored"
            )
        pieces = []
        while True:
            token = tokens.get()
            if token.is_eol_or_eof():
                break
            if not token.is_identifier():
                raise _BadRecord("key material must be base64")
            pieces.append(token.value)
        if not pieces:
            raise _BadRecord("DNSKEY without key material")
        secret = _decode_secret("".join(pieces))
        if secret is None:
            raise _BadRecord("key material is not valid base64")
        if not secret:
            raise _BadRecord("DNSKEY with an empty secret")
        return Key(owner, algorithm.name, secret)

    @staticmethod
    def _number(tokens: dns.tokenizer.Tokenizer, what: str, maximum: int) -> int:
        token = tokens.get()
        if not token.is_identifier() or not token.value.isdigit():
            raise _BadRecord(f"{what} must be a number")
        value = int(token.value)
        if value > maximum:
            raise _BadRecord(f"{what} {value} is out of range")
        return value

    @staticmethod
    def _end(tokens: dns.tokenizer.Tokenizer) -> None:
        if not tokens.get().is_eol_or_eof():
            raise _BadRecord("unexpected text after the directive")


def _is_class(text: str) -> bool:
    try:
        dns.rdataclass.from_text(text)
    except dns.exception.DNSException:
        return False
    return True


def _record_end(lines: list[str], start: int) -> int | None:
    """Index just past the lines making up the record starting at `start`.

    None when the file ends inside parentheses.
    """
    depth = 0
    for index in range(start, len(lines)):
        # A stray ")" is left for the tokenizer to report.
        depth = paren_depth(lines[index], depth)
        if depth <= 0:
            return index + 1
    return None
