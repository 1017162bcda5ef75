#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium and its chromedriver exist for the browser test
# (tests/test_browser_ui.py drives the Prefect UI with Selenium). Idempotent; one line of output.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [[ -x "$CHROMIUM" && -x "$CHROMEDRIVER" ]]; then
    echo "ensure-browser: chromium and chromedriver already installed ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-browser: $CHROMIUM or $CHROMEDRIVER missing and no apt-get to install them;" \
        "install chromium and chromium-driver by hand" >&2
    exit 1
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "ensure-browser: need root or sudo to apt-get install chromium chromium-driver" >&2
        exit 1
    fi
    SUDO=(sudo)
fi

# Wait (up to 10 minutes) for another apt/dpkg run to release its lock instead of failing.
APT_OPTS=(-o DPkg::Lock::Timeout=600)
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update -qq >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -qq \
    --no-install-recommends chromium chromium-driver >/dev/null

if [[ ! -x "$CHROMIUM" || ! -x "$CHROMEDRIVER" ]]; then
    echo "ensure-browser: apt-get ran but $CHROMIUM or $CHROMEDRIVER is still missing" >&2
    exit 1
fi
echo "ensure-browser: installed chromium and chromium-driver via apt ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
