#!/usr/bin/env bash
# What real BitTorrent clients do with ccmirror's v1, hybrid and v2 torrents, measured on
# this machine (see bench/interop.py); prints the client matrix README shows.
# Needs the Debian packages aria2, transmission-cli and opentracker (installed by .ci/run).
# Takes about three minutes on 2 cores.
#
# Transmission 3.00 takes no peer at 127.0.0.0/8 or ::1, so as root the run goes into a
# network namespace of its own (unshare --net: nothing in it reaches any other host) whose
# loopback also carries 198.18.0.1 (RFC 2544 benchmarking range); tracker and seeder use it.
# Without root the run stays on 127.0.0.1 and Transmission's download from the seeder fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CCMIRROR_INTEROP_HOST:-}" ] && [ "$(id -u)" -eq 0 ] \
    && command -v unshare >/dev/null && command -v ip >/dev/null; then
    exec unshare --net bash -c '
        ip link set lo up && ip addr add 198.18.0.1/32 dev lo &&
        CCMIRROR_INTEROP_HOST=198.18.0.1 exec .venv/bin/python bench/interop.py "$@"' \
        interop "$@"
fi
exec .venv/bin/python bench/interop.py "$@"
