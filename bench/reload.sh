#!/bin/sh
# Many zones: start-up time and NOTIFY-to-serving time (see bench/reload.py).
set -eu
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/reload.py "$@"
