#!/usr/bin/env bash
# Installs the system packages the test suite needs: Debian's chromium (the browser
# tests drive it through Playwright), a CJK font so Chinese renders in screenshots, the
# Android platform tools the APK tests check against (aapt with the framework resources, dexdump),
# and Redis, the shared crawl frontier the tests start on loopback.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qiE 'wqy|noto sans cjk' || need+=(fonts-wqy-zenhei)
command -v aapt >/dev/null 2>&1 || need+=(aapt)
[ -f /usr/share/android-framework-res/framework-res.apk ] || need+=(android-framework-res)
command -v dexdump >/dev/null 2>&1 || need+=(dexdump)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing system packages: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
fi
