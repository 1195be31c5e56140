#!/usr/bin/env bash
# Installs everything mod_crane needs to build, test and run on Debian 12.
# The single source of truth for dependencies: .ci/run, the README's commands
# and the demo all call this script.
#
# It leaves the machine consistent whatever was preinstalled: every package
# it needs, and the runtime libraries httpd and its modules load, at the
# versions the archive serves together. Installing only what is missing is
# not enough: a machine that came with an older libssl3 would get an apache2
# built against a newer OpenSSL next to it, and mod_ssl warns at every start
# (AH01882). So one `apt-get install` brings the whole list, missing or
# outdated, level with the archive. Idempotent; with nothing to do it costs
# one dpkg-query and one apt-cache call.
#
#   CRANE_DEPS_CHECK_ONLY=1  report what is missing or outdated, change nothing
#                            (exit 1 when something is)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config python3
  apache2 apache2-dev
  libssl-dev zlib1g-dev libcurl4-openssl-dev libexpat1-dev rapidjson-dev
  catch2 curl openssl ca-certificates
  skopeo podman clang-tidy docker.io
  containerd buildah nghttp2-client python3-h2 python3-prometheus-client
  wrk valgrind
)
# What httpd, mod_ssl, mod_crane and curl load at run time. apt installs
# them as dependencies but never upgrades one that is already there and
# still satisfies the dependency's lower bound, so they are listed here too.
RUNTIME_LIBS=(
  libssl3 libapr1 libaprutil1 libaprutil1-dbd-sqlite3 libaprutil1-ldap
  libcurl4 libexpat1 zlib1g libbrotli1 libnghttp2-14 libpcre2-8-0 libxml2 libjansson4 liblua5.3-0
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# Packages (from the two lists) not installed, or installed at another
# version than the archive's candidate. A runtime library that is not
# installed is not needed by anything here: it is skipped.
stale_packages() {
  local -A installed=()
  local p v s
  while IFS=' ' read -r p v s; do
    [ "$s" = "installed" ] && installed[$p]=$v
  done < <(dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' "${PKGS[@]}" "${RUNTIME_LIBS[@]}" 2>/dev/null || true)
  local -A candidate=()
  local pkg=""
  while IFS= read -r line; do
    case "$line" in
      [!\ ]*:) pkg=${line%:} ;;
      *Candidate:*) candidate[$pkg]=$(echo "$line" | awk '{print $2}') ;;
    esac
  done < <(LC_ALL=C apt-cache policy "${PKGS[@]}" "${RUNTIME_LIBS[@]}" 2>/dev/null || true)
  for p in "${PKGS[@]}"; do
    if [ -z "${installed[$p]:-}" ]; then
      echo "$p (not installed)"
    elif [ -n "${candidate[$p]:-}" ] && [ "${candidate[$p]}" != "(none)" ] && [ "${candidate[$p]}" != "${installed[$p]}" ]; then
      echo "$p ${installed[$p]} (archive: ${candidate[$p]})"
    fi
  done
  for p in "${RUNTIME_LIBS[@]}"; do
    [ -n "${installed[$p]:-}" ] || continue
    if [ -n "${candidate[$p]:-}" ] && [ "${candidate[$p]}" != "(none)" ] && [ "${candidate[$p]}" != "${installed[$p]}" ]; then
      echo "$p ${installed[$p]} (archive: ${candidate[$p]})"
    fi
  done
}

# apt's package lists: refreshed when missing or older than 6 hours, so a
# machine whose image carries old lists still sees the archive's versions.
lists_stale() {
  local newest
  newest=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -printf '%T@\n' 2>/dev/null | sort -n | tail -1)
  [ -z "$newest" ] && return 0
  [ $(( $(date +%s) - ${newest%.*} )) -gt 21600 ]
}

if [ "${CRANE_DEPS_CHECK_ONLY:-}" = "1" ]; then
  stale=$(stale_packages)
  if [ -n "$stale" ]; then
    echo "install-deps: these packages are missing or lag the archive:" >&2
    echo "$stale" | sed 's/^/  /' >&2
    echo "install-deps: run scripts/install-deps.sh to bring them level" >&2
    exit 1
  fi
  exit 0
fi

if lists_stale; then
  $SUDO apt-get update -qq
fi
stale=$(stale_packages)
if [ -n "$stale" ]; then
  echo "install-deps: installing or upgrading:"
  echo "$stale" | sed 's/^/  /'
  # one transaction for the whole set (installed ones are upgraded to the
  # candidate), so libraries and their users come from the same archive state
  installed_libs=()
  for p in "${RUNTIME_LIBS[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' && installed_libs+=("$p")
  done
  $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" "${installed_libs[@]}" \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" "${installed_libs[@]}"; }
  # apache2 may have pulled in runtime libraries only now; level them too
  stale=$(stale_packages)
  if [ -n "$stale" ]; then
    again=()
    while read -r p _; do again+=("$p"); done <<< "$stale"
    $SUDO apt-get install -y -qq --no-install-recommends "${again[@]}"
  fi
fi

# The check that matters for a TLS server: mod_ssl must run with the
# OpenSSL it was built against, or newer. Fail loudly, with the fix.
stale=$(stale_packages)
if [ -n "$stale" ]; then
  echo "install-deps: these packages still lag the archive after installing:" >&2
  echo "$stale" | sed 's/^/  /' >&2
  echo "install-deps: fix with: apt-get update && apt-get install $(echo "$stale" | awk '{print $1}' | tr '\n' ' ')" >&2
  exit 1
fi

# Debian starts the packaged apache2 service on install; the tests and the
# demo run their own httpd, so make sure the system one does not sit on :80.
if command -v service >/dev/null 2>&1 && pgrep -x apache2 >/dev/null 2>&1; then
  if [ "${CRANE_KEEP_SYSTEM_APACHE:-}" != "1" ] && [ -n "${CI:-}" ]; then
    service apache2 stop >/dev/null 2>&1 || true
  fi
fi
