#!/usr/bin/env bash
# Installs the system packages the test suite needs: Debian's chromium (the browser
# tests drive it through Playwright) and a CJK font so Chinese renders in screenshots.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qiE 'wqy|noto sans cjk' || need+=(fonts-wqy-zenhei)

if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing system packages: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
fi
