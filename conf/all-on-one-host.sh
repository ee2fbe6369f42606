#!/bin/sh
# Primary, secondary and ACME helper together on one machine, on loopback addresses,
# from the example zones of conf/ (the shape of the seed's three unikernels):
#   127.0.0.2:5353  gitdns-primary    (NOTIFYs go to port 5353 of its secondaries)
#   127.0.0.3:5353  gitdns-secondary  (key 127.0.0.2.127.0.0.3._transfer.mirage)
#   127.0.0.4:5353  gitdns-acme       (hidden secondary, Let's Encrypt staging)
# Run from the checkout after `sh scripts/setup.sh`; stop with Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
work=${GITDNS_WORK:-$PWD/all-on-one-host}
transfer=cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20=
acme=kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg=
if [ ! -d "$work/remote.git" ]; then
    mkdir -p "$work/zones"
    git init -q --bare -b main "$work/remote.git"
    git init -q -b main "$work/zones"
    cp conf/mirage "$work/zones/"
    { cat conf/mirage._keys
      echo "127.0.0.2.127.0.0.3._transfer.mirage. DNSKEY 0 3 163 $transfer"
      echo "acme._update. DNSKEY 0 3 163 $acme"; } > "$work/zones/mirage._keys"
    git -C "$work/zones" add -A
    git -C "$work/zones" -c user.name=gitdns -c user.email=gitdns@localhost commit -q -m zones
    git -C "$work/zones" push -q "$work/remote.git" main
fi
twistd=.venv/bin/twistd
$twistd -n --pidfile= gitdns-primary --remote "$work/remote.git" --listen 127.0.0.2:5353 \
    --notify-port 5353 --data-dir "$work/primary" &
$twistd -n --pidfile= gitdns-secondary --key "127.0.0.2.127.0.0.3._transfer.mirage:SHA256:$transfer" \
    --listen 127.0.0.3:5353 --primary-port 5353 --data-dir "$work/secondary" &
$twistd -n --pidfile= gitdns-acme --key "acme._update:SHA256:$acme" --primary 127.0.0.2:5353 \
    --listen 127.0.0.4:5353 --data-dir "$work/acme" &
trap 'kill $(jobs -p) 2>/dev/null' INT TERM EXIT
wait
