#!/bin/sh
# Set up, then serve the example zones of conf/ as a git repository on 127.0.0.1:5353.
# Try it from another shell: dig @127.0.0.1 -p 5353 www.mirage
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
# The remote: a bare repository (a push, of dynamic updates say, cannot go into a
# checked-out one); `git clone example-zones.git` gives files to edit and push back.
example=${GITDNS_EXAMPLE:-$PWD/example-zones.git}
if [ ! -e "$example/HEAD" ] && [ ! -d "$example/.git" ]; then
    work=$(mktemp -d)
    cp conf/mirage conf/mirage._keys "$work/"
    git -C "$work" init -q
    git -C "$work" add .
    git -C "$work" -c user.name=gitdns -c user.email=gitdns@localhost commit -q -m "example zones"
    git clone -q --bare "$work" "$example"
    rm -rf "$work"
fi
exec .venv/bin/twistd -n --pidfile= gitdns-primary --remote "$example" \
    --listen 127.0.0.1:5353 --data-dir "$PWD/gitdns-data"
