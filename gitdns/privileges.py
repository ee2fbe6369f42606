"""twistd -u/-g: what a service made as root is handed to the user it runs as."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from typing import Any


def give_away_to_twistd_user(options: Mapping[str, Any], path: str) -> None:
    """When root starts a service with twistd -u (and -g), chown -R path (its data, made
    as root before the privilege drop) to that user, so the service can still write it."""
    twistd = getattr(options, "parent", None)
    if twistd is not None and twistd.get("uid") is not None and os.getuid() == 0:
        give_away(path, twistd["uid"], twistd.get("gid"))


def give_away(path: str, uid: int, gid: int | None) -> None:
    """chown -R path to uid (and gid, default uid's primary group)."""
    if gid is None:
        gid = pwd.getpwuid(uid).pw_gid
    os.chown(path, uid, gid)
    for top, directories, files in os.walk(path):
        for name in directories + files:
            os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)
