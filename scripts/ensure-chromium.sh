#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the dashboard's browser test (tests/test_service_browser.py).
#
# Idempotent: does nothing when /usr/bin/chromium exists. Otherwise installs the `chromium` package
# with apt-get (root, Debian/Ubuntu). Playwright drives this binary (executable_path); we never run
# `playwright install`, which would download a browser from a CDN.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

die() { echo "ensure-chromium: error: $*" >&2; exit 1; }
log() { echo "ensure-chromium: $*" >&2; }

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and apt-get is unavailable: install chromium yourself"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else die "$CHROMIUM is missing: run as root (apt-get install chromium)"; fi
else
    SUDO=()
fi

log "$CHROMIUM not found; installing Debian's chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
# Concurrent apt runs (another engineer, start-postgres.sh) hold the dpkg lock: wait for it.
for attempt in 1 2 3 4 5 6; do
    if "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=120 update -q >&2 \
        && "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=120 install -y -q chromium >&2; then
        break
    fi
    [ "$attempt" -lt 6 ] || die "apt-get install chromium failed"
    log "apt-get failed (attempt $attempt); retrying in 10 s"
    sleep 10
done

[ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM is missing"
log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
