#!/bin/sh
# dnsperf query rate of gitdns on a 275,000-line zone queried with random names, against
# its rate on bench/queries.sh's small zone, in one run; NSD and BIND on the big zone with
# --servers gitdns,nsd,named.  Options: see bench/bigzone.py --help.
# Example: bench/bigzone.sh --duration 10 --servers gitdns,nsd
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3
exec "$python" "$here/bigzone.py" "$@"
