#!/usr/bin/env sh
# The browser tests (tests/browser) drive Debian's chromium through chromium-driver. Install both
# from the distribution's packages when they are missing (as root with apt), else say what to do.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver from the distribution's packages (browser tests)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    exit 0
fi
echo "The browser tests need chromium and chromedriver on PATH: install the distribution's" >&2
echo "chromium and chromium-driver packages (e.g. sudo apt-get install chromium chromium-driver)." >&2
exit 2
