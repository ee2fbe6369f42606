#!/bin/sh
# Soak: dnsperf at full rate for minutes with UPDATEs and NOTIFYs (see bench/soak.py).
set -eu
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/soak.py "$@"
