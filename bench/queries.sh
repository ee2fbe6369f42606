#!/bin/sh
# dnsperf against gitdns, NSD, BIND (named -n 1) and twistd dns on the same zone and
# query file; prints qps per server and the ratios gitdns/NSD, gitdns/BIND,
# gitdns/twistd-dns.  Options (see bench/bench.py --help):
#   --duration SECONDS (default 20)  --clients N (20)  --outstanding N (300)
#   --max-qps N (unlimited)  --servers gitdns,nsd,named,twistd-dns  -v
# Example: bench/queries.sh --duration 5 --servers nsd,named
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3
exec "$python" "$here/bench.py" "$@"
