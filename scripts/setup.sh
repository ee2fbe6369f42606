#!/bin/sh
# Install what gitdns and its tests need on a fresh Debian machine (run as root for
# the Debian packages): the peers the tests run for real, a venv, gitdns itself.
set -eu
cd "$(dirname "$0")/.."

missing=""
for pair in named:bind9 dig:bind9-dnsutils nsupdate:bind9-dnsutils kdig:knot-dnsutils \
            knotd:knot dnsperf:dnsperf pebble:pebble sshd:openssh-server nsd:nsd git:git; do
    command=${pair%%:*}
    package=${pair#*:}
    if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
        case " $missing " in *" $package "*) ;; *) missing="$missing $package" ;; esac
    fi
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    apt-get update -qq
    # policy-rc.d keeps the packaged daemons from starting on port 53 during install.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

# A venv whose making was interrupted is made again from scratch: without its
# pyvenv.cfg, .venv/bin/pip would install into the system's Python.
if [ ! -f .venv/pyvenv.cfg ] || [ ! -x .venv/bin/pip ]; then
    rm -rf .venv
    python3 -m venv .venv
fi
# compat mode puts the checkout on sys.path, where twistd finds twisted/plugins/.
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' \
    --config-settings editable_mode=compat
