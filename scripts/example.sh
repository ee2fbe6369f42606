#!/bin/sh
# Set up, then serve the example zones of conf/ as a git repository on 127.0.0.1:5353.
# Try it from another shell: dig @127.0.0.1 -p 5353 www.mirage
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
example=${GITDNS_EXAMPLE:-$PWD/example-zones}
if [ ! -d "$example/.git" ]; then
    mkdir -p "$example"
    cp conf/mirage conf/mirage._keys "$example/"
    git -C "$example" init -q
    git -C "$example" add .
    git -C "$example" -c user.name=gitdns -c user.email=gitdns@localhost commit -q -m "example zones"
fi
exec .venv/bin/twistd -n --pidfile= gitdns-primary --remote "$example" \
    --listen 127.0.0.1:5353 --data-dir "$PWD/gitdns-data"
