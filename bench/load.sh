#!/bin/sh
# Load time and peak resident memory of gitdns vs BIND's named-checkzone (and NSD's
# nsd-checkzone) on the same generated zone of 275,000 lines (A, TXT, MX), as ratios;
# and gitdns again taking the zone from its zone cache, as a restart does.
# Usage: bench/load.sh [LINES]
set -eu
cd "$(dirname "$0")/.."
lines=${1:-275000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
# The zone of bench/bigzone.py (its big_zone), the one bench/served.py serves too.
.venv/bin/python -c 'import sys; sys.path.insert(0, "bench"); from bigzone import big_zone
open(sys.argv[2], "w").write(big_zone(int(sys.argv[1])))' "$lines" "$work/big.example"

measure() {  # name command...: prints "name seconds kilobytes"
    name=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
    echo "$name $(cat "$work/time")"
}

# -i none and the ignore flags: no integrity checks that would look names up in DNS.
bind=$(measure bind named-checkzone -i none -n ignore -m ignore -M ignore -S ignore -T ignore \
    big.example "$work/big.example")
nsd=""
if command -v nsd-checkzone >/dev/null 2>&1; then
    nsd=$(measure nsd nsd-checkzone big.example "$work/big.example")
fi
gitdns=$(measure gitdns .venv/bin/python bench/load.py big.example. "$work/big.example")
# A restart: the zone as the last run stored it in the zone cache.
.venv/bin/python bench/load.py --cache "$work/cache" --store big.example. "$work/big.example" >/dev/null
cached=$(measure cached .venv/bin/python bench/load.py --cache "$work/cache" big.example. "$work/big.example")

echo "zone: $lines lines"
printf '%-8s %8s %10s\n' server seconds "peak MB"
for row in "$bind" "$nsd" "$gitdns" "$cached"; do
    [ -n "$row" ] || continue
    set -- $row
    printf '%-8s %8s %10d\n' "$1" "$2" $(($3 / 1024))
done
set -- $bind; bind_s=$2; bind_kb=$3
set -- $gitdns; git_s=$2; git_kb=$3
set -- $cached; cached_s=$2; cached_kb=$3
awk -v gs="$git_s" -v bs="$bind_s" -v gk="$git_kb" -v bk="$bind_kb" -v cs="$cached_s" \
    -v ck="$cached_kb" 'BEGIN {
    printf "gitdns/BIND: time %.2fx (target <= 3), memory %.2fx (target <= 3)\n", gs / bs, gk / bk
    printf "cached/BIND: time %.2fx, memory %.2fx\n", cs / bs, ck / bk }'
