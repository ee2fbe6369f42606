#!/bin/sh
# UPDATE throughput and answer latency of gitdns-primary (issue 5): updates/s, median
# and p99 answer latency for a 1,000-record and a 100,000-record zone, CLIENTS
# TSIG-signed dnsperf -u clients over TCP; the primary is started and stopped here.
# Targets: >= 200 updates/s and median <= 20 ms (1,000 records); >= 20 updates/s
# (100,000 records).  Exit status 1 when a target is missed.
# Options (see bench/updates.py --help): --duration SECONDS (10) --clients N (4)
#   --sizes 1000,100000  -v
# Example: bench/updates.sh --duration 5 --sizes 1000
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3
exec "$python" "$here/updates.py" "$@"
