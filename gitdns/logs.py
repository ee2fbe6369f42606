"""Log observers for twistd's --logger: `twistd --logger gitdns.logs.json_lines ...`.

One JSON object per line with the event's structured fields (zone, peer, key, rcode
...), for log shippers. Secrets are never among the fields: keys are logged by name.
"""

from __future__ import annotations

import sys

from twisted.logger import ILogObserver, jsonFileLogObserver


def json_lines() -> ILogObserver:
    return jsonFileLogObserver(sys.stdout, recordSeparator="")
