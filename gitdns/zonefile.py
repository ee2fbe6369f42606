"""Reading master files (RFC 1035 section 5) into RRsets, keeping line numbers in errors.

One reader serves the server's loads and reloads and `gitdns check`, so both report a
broken file with the same ``file:line: message``.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone


@dataclass(frozen=True)
class ZoneFileError(Exception):
    """A master file that cannot be used; ``str()`` is ``file:line: message``."""

    filename: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.filename}: {self.message}"
        return f"{self.filename}:{self.line}: {self.message}"


def _split_location(filename: str, text: str) -> tuple[int | None, str]:
    """dnspython prefixes syntax errors with ``file:line: ``; take them apart."""
    prefix = f"{filename}:"
    if text.startswith(prefix):
        line, _, message = text[len(prefix) :].partition(": ")
        if line.isdigit():
            return int(line), message
    return None, text


def read_rrsets(text: str, origin: dns.name.Name, filename: str) -> list[dns.rrset.RRset]:
    """Parse a zone's master file into absolute RRsets of class IN.

    ``$INCLUDE`` is refused: a repository must never make the server read its own files.
    Raises ZoneFileError.
    """
    try:
        zone = dns.zone.from_text(
            text,
            origin=origin,
            relativize=False,
            filename=filename,
            allow_include=False,
            check_origin=False,
        )
    except dns.exception.SyntaxError as error:
        line, message = _split_location(filename, str(error))
        raise ZoneFileError(filename, line, message) from None
    except dns.zone.NoSOA:
        raise ZoneFileError(filename, None, f"no SOA record at the zone apex {origin}") from None
    except (dns.exception.DNSException, ValueError, UnicodeError) as error:
        raise ZoneFileError(filename, None, str(error) or type(error).__name__) from None
    return [
        dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
        for name, rdataset in zone.iterate_rdatasets()
    ]
