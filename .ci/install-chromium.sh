#!/bin/sh
# Debian's chromium for the report tests (test/reports drive it through playwright-core at
# /usr/bin/chromium). Idempotent: does nothing when it is already installed and starts.
set -eu

if [ -x /usr/bin/chromium ] && /usr/bin/chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
