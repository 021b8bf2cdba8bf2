#!/usr/bin/env bash
# Debian packages the test suite runs: libfaketime (gateway processes sharing a fake wall clock) and chromium
# (the console's real-browser tests, driven by Playwright through executable_path=/usr/bin/chromium) and haproxy
# (tests/test_lb.py runs replicas behind it with deploy/haproxy.cfg; it starts its own process, not the service)
# and gcc (make fast compiles the request path with mypyc; make test runs its tests against that build).
# Installed only when missing, so an offline machine that has them runs the suite without a network.
set -euo pipefail
need=()
dpkg -s faketime >/dev/null 2>&1 || need+=(faketime)
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s haproxy >/dev/null 2>&1 || need+=(haproxy)
dpkg -s gcc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    echo "packages: installing ${need[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" \
        || { echo "packages: FAILED to install ${need[*]}" >&2; exit 1; }
fi
echo "packages: ${need[*]:-nothing to install}"
