#!/bin/sh
# Chromium for tests/test_browser.py (`make browser`, run by `make test`): Debian's package, as
# Playwright's own browser download is not used. Installs it with apt-get when it is missing and
# apt-get is usable (root, or sudo without a password); otherwise it says why and the browser
# test skips. Always exits 0: a failed install never fails `make test` by itself.
if [ -n "$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then
    exit 0
fi
skip="tests/test_browser.py will skip (install chromium, or set CHROMIUM=/path/to/chrome)"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: no chromium and no apt-get: $skip"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
else
    echo "browser: no chromium, and apt-get needs root (or sudo without a password): $skip"
    exit 0
fi
echo "browser: installing Debian's chromium with apt-get (once)"
log="$(mktemp)"
export DEBIAN_FRONTEND=noninteractive
if $sudo apt-get install -y -q chromium >"$log" 2>&1 \
    || { $sudo apt-get update -q >>"$log" 2>&1 \
         && $sudo apt-get install -y -q chromium >>"$log" 2>&1; }; then
    echo "browser: $(chromium --version 2>/dev/null)"
else
    tail -n 5 "$log"
    echo "browser: apt-get could not install chromium: $skip"
fi
rm -f "$log"
exit 0
