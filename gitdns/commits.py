"""UPDATEs as git commits: applied to the branch head, and re-applied on a new head.

Every commit made for UPDATEs carries the updates themselves (wire format, without
TSIG) in ``Gitdns-Update:`` trailers. That makes a local commit re-playable: when the
remote moved meanwhile, the updates are applied again, with their prerequisites, on
top of the remote's head instead of merging text (two edits of one SOA serial always
conflict as text). Blocking (pygit2): run it in the repository's worker thread.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pygit2

from gitdns.update import PendingZone, apply_update
from gitdns.zoneedit import Record, edit_zone_text
from gitdns.zones import LoadedZone, Zone, parse_zone

TRAILER = "Gitdns-Update:"
COMMITTER = pygit2.Signature("gitdns", "gitdns@localhost")


@dataclass(frozen=True)
class UpdateItem:
    """One authorised UPDATE for the zone held in file filename."""

    zone: dns.name.Name
    filename: str
    # The request without its TSIG record: what is replayed.
    wire: bytes
    keyname: dns.name.Name
    client: str
    # The request as parsed already, when there is one: not parsed again to apply it.
    message: dns.message.Message | None = field(default=None, compare=False, repr=False)

    def trailer(self) -> str:
        encoded = base64.b64encode(self.wire).decode("ascii")
        return f"{TRAILER} {self.filename} {self.keyname} {self.client} {encoded}"

    @classmethod
    def from_trailer(cls, line: str) -> UpdateItem:
        _, filename, keyname, client, encoded = line.split()
        wire = base64.b64decode(encoded, validate=True)
        message = dns.message.from_wire(wire)
        return cls(message.question[0].name, filename, wire, dns.name.from_text(keyname), client)


def unsigned_wire(wire: bytes, message: dns.message.Message) -> bytes:
    """The signed request wire (parsed as message) without its TSIG record, with its
    original ID, as it was before it was signed (RFC 8945 4.3.1): the TSIG record is
    the last one, cut off. Rendering the message again took a fifth of the reactor's
    time per UPDATE."""
    if message.tsig is None:
        return wire
    additional = int.from_bytes(wire[10:12], "big") - 1
    original_id = message.tsig[0].original_id
    return b"".join(
        (
            original_id.to_bytes(2, "big"),
            wire[2:10],
            additional.to_bytes(2, "big"),
            wire[12 : _last_record(wire)],
        )
    )


def _last_record(wire: bytes) -> int:
    """Where the last resource record of a well-formed message starts."""
    offset = _skip_name(wire, 12) + 4
    records = sum(int.from_bytes(wire[at : at + 2], "big") for at in (6, 8, 10))
    start = offset
    for _ in range(records):
        start = offset
        offset = _skip_name(wire, offset) + 8
        offset += 2 + int.from_bytes(wire[offset : offset + 2], "big")
    return start


def _skip_name(wire: bytes, offset: int) -> int:
    """The offset just past the name at offset (its labels, or up to a pointer)."""
    while True:
        length = wire[offset]
        if length >= 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


@dataclass
class _ZoneState:
    text: str
    # UPDATEs of a batch leave it pending: indexed once, when the batch is done.
    zone: Zone | PendingZone
    # The batch's net changes, (name, type, rdata) -> TTL, in the order they happened:
    # the file is edited once for the whole batch.
    removed: dict[tuple, int] = field(default_factory=dict)
    added: dict[tuple, int] = field(default_factory=dict)

    def record(self, removed: list[Record], added: list[Record]) -> None:
        for name, ttl, rdata in removed:
            key = (name, rdata.rdtype, rdata)
            if key in self.added:
                del self.added[key]  # added earlier in this batch: as if never there
            else:
                self.removed[key] = ttl
        for name, ttl, rdata in added:
            key = (name, rdata.rdtype, rdata)
            if self.removed.get(key) == ttl:
                del self.removed[key]  # put back as it was
            else:
                self.added[key] = ttl

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.added)

    def changes(self) -> tuple[list[Record], list[Record]]:
        return (
            [(name, ttl, rdata) for (name, _, rdata), ttl in self.removed.items()],
            [(name, ttl, rdata) for (name, _, rdata), ttl in self.added.items()],
        )


@dataclass(frozen=True)
class Applied:
    """What applying UPDATEs on a commit gave."""

    commit: pygit2.Oid | None  # the new commit (not yet on any branch), None if no change
    rcodes: list[int]  # per item, in order
    # filename -> the new parsed zone with its blob id, so nothing is parsed again.
    zones: dict[str, LoadedZone] = field(default_factory=dict)
    # A one-line summary per applied item, for the log.
    changes: list[str] = field(default_factory=list)
    # filename -> the net (removed, added) records of the commit (IXFR's difference).
    deltas: dict[str, tuple[list[Record], list[Record]]] = field(default_factory=dict)
    # blob id -> text of the zone files written, for the next commit to edit.
    texts: dict[str, str] = field(default_factory=dict)


def apply_updates(
    repo: pygit2.Repository,
    parent: pygit2.Commit,
    items: list[UpdateItem],
    known: Mapping[str, LoadedZone],
    *,
    author_time: int,
    texts: Mapping[str, str] = {},
) -> Applied:
    """Apply items in order on parent's tree and make one commit of all that changed.

    known maps file names to zones already parsed (by blob id), to skip parsing, and
    texts blob ids to their text, to skip reading them. An item
    whose prerequisites fail, or whose zone file is gone, changes nothing; its rcode says
    why. The commit is created but no reference is moved: the caller does that.
    """
    states: dict[str, _ZoneState] = {}
    rcodes: list[int] = []
    applied: list[tuple[UpdateItem, list[str]]] = []
    for item in items:
        state = states.get(item.filename) or _read(repo, parent.tree, item, known, texts)
        if state is None:
            rcodes.append(dns.rcode.NOTAUTH)
            continue
        states[item.filename] = state
        message = item.message or dns.message.from_wire(item.wire)
        result = apply_update(state.zone, message, pending=True)
        rcodes.append(result.rcode)
        if result.rcode != dns.rcode.NOERROR or not result.changed:
            continue
        state.record(result.removed, result.added)
        state.zone = result.zone
        lines = [f"- {_record(*r)}" for r in result.removed]
        lines += [f"+ {_record(*r)}" for r in result.added]
        applied.append((item, lines))
    if not applied:
        return Applied(None, rcodes)
    builder = repo.TreeBuilder(parent.tree)
    zones: dict[str, LoadedZone] = {}
    deltas: dict[str, tuple[list[Record], list[Record]]] = {}
    written: dict[str, str] = {}
    for filename, state in states.items():
        if state.changed:
            deltas[filename] = removed, added = state.changes()
            zone = state.zone.finish() if isinstance(state.zone, PendingZone) else state.zone
            text = edit_zone_text(state.text, zone.origin, filename, removed, added)
            blob = repo.create_blob(text.encode("utf-8"))
            builder.insert(filename, blob, pygit2.GIT_FILEMODE_BLOB)
            zones[filename] = LoadedZone(str(blob), zone, filename)
            written[str(blob)] = text
    keys = sorted({str(item.keyname) for item, _ in applied})
    author = pygit2.Signature(f"{', '.join(keys)} via gitdns", "gitdns@localhost", author_time, 0)
    committer = pygit2.Signature(COMMITTER.name, COMMITTER.email, author_time, 0)
    commit = repo.create_commit(
        None, author, committer, _message(applied), builder.write(), [parent.id]
    )
    summaries = [
        f"+{sum(line[0] == '+' for line in lines)} -{sum(line[0] == '-' for line in lines)} "
        f"records in commit {str(commit)[:12]}"
        for _, lines in applied
    ]
    return Applied(commit, rcodes, zones, summaries, deltas, written)


def _read(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    item: UpdateItem,
    known: Mapping[str, LoadedZone],
    texts: Mapping[str, str],
) -> _ZoneState | None:
    if item.filename not in tree:
        return None
    blob_id = tree[item.filename].id
    text = texts.get(str(blob_id))
    if text is None:
        text = repo[blob_id].data.decode("utf-8")
    loaded = known.get(item.filename)
    if loaded is not None and loaded.blob_id == str(blob_id):
        return _ZoneState(text, loaded.zone)
    return _ZoneState(text, parse_zone(item.zone, text, item.filename))


def _record(name: dns.name.Name, ttl: int, rdata: object) -> str:
    return f"{name} {ttl} IN {dns.rdatatype.to_text(rdata.rdtype)} {rdata}"


def _message(applied: list[tuple[UpdateItem, list[str]]]) -> str:
    zones = sorted({str(item.zone) for item, _ in applied})
    clients = sorted({item.client for item, _ in applied})
    added = sum(line.startswith("+") for _, lines in applied for line in lines)
    removed = sum(line.startswith("-") for _, lines in applied for line in lines)
    subject = f"Update {', '.join(zones)}: +{added} -{removed} records from {', '.join(clients)}"
    body = []
    for item, lines in applied:
        body.append(f"{item.zone} by {item.keyname} from {item.client}:")
        body.extend(f"  {line}" for line in lines)
    trailers = [item.trailer() for item, _ in applied]
    return "\n".join([subject, "", *body, "", *trailers]) + "\n"


def items_of(commit: pygit2.Commit) -> list[UpdateItem]:
    """The UPDATEs a gitdns commit carries (none for other commits)."""
    items = []
    for line in commit.message.splitlines():
        if line.startswith(TRAILER):
            items.append(UpdateItem.from_trailer(line))
    return items


def local_commits(
    repo: pygit2.Repository, local: pygit2.Oid, remote: pygit2.Oid
) -> Iterator[pygit2.Commit]:
    """Commits on local and not on remote, oldest first."""
    walker = repo.walk(local, pygit2.GIT_SORT_TOPOLOGICAL | pygit2.GIT_SORT_REVERSE)
    walker.hide(remote)
    yield from walker


@dataclass(frozen=True)
class Replayed:
    head: pygit2.Oid  # the new local head: onto plus what could be re-applied
    # Updates acknowledged earlier whose prerequisites no longer hold, with the rcode.
    dropped: list[tuple[UpdateItem, int]]
    zones: dict[str, LoadedZone]


def replay(
    repo: pygit2.Repository,
    local: pygit2.Oid,
    onto: pygit2.Oid,
    known: Mapping[str, LoadedZone],
) -> Replayed:
    """Re-apply the UPDATEs of the commits on local but not on onto, on top of onto.

    Nothing is moved: the caller points the branch at the result once it is complete,
    so a crash halfway loses nothing.
    """
    head = repo[onto].peel(pygit2.Commit)
    dropped: list[tuple[UpdateItem, int]] = []
    zones: dict[str, LoadedZone] = dict(known)
    for commit in list(local_commits(repo, local, onto)):
        items = items_of(commit)
        applied = apply_updates(repo, head, items, zones, author_time=commit.author.time)
        dropped += [
            (item, rcode)
            for item, rcode in zip(items, applied.rcodes, strict=True)
            if rcode != dns.rcode.NOERROR
        ]
        if applied.commit is not None:
            head = repo[applied.commit].peel(pygit2.Commit)
            zones.update(applied.zones)
    return Replayed(head.id, dropped, zones)
