#!/bin/sh
# Set up (scripts/setup.sh), then run the whole test suite: lint, unit tests of the
# core (trial), end-to-end tests against real peers (pytest).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
.venv/bin/ruff check gitdns twisted tests bench
.venv/bin/trial gitdns
.venv/bin/python -m pytest tests
