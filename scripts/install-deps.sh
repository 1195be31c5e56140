#!/usr/bin/env bash
# Installs everything mod_crane needs to build, test and run on Debian 12.
# The single source of truth for dependencies: .ci/run, the README's commands
# and the demo all call this script.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config python3
  apache2 apache2-dev
  libssl-dev zlib1g-dev libcurl4-openssl-dev libexpat1-dev rapidjson-dev
  catch2 curl openssl ca-certificates
  skopeo podman clang-tidy
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts the packaged apache2 service on install; the tests and the
# demo run their own httpd, so make sure the system one does not sit on :80.
if command -v service >/dev/null 2>&1 && pgrep -x apache2 >/dev/null 2>&1; then
  if [ "${CRANE_KEEP_SYSTEM_APACHE:-}" != "1" ] && [ -n "${CI:-}" ]; then
    service apache2 stop >/dev/null 2>&1 || true
  fi
fi
