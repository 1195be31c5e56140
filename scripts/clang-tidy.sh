#!/usr/bin/env bash
# Runs clang-tidy (checks in .clang-tidy, warnings are errors) over the
# library, the module and the tools, using BUILD_DIR's compile commands.
#   scripts/clang-tidy.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/clang-tidy.sh BUILD_DIR}
tidy=$(command -v clang-tidy || command -v clang-tidy-14 || true)
if [ -z "$tidy" ]; then
  echo "clang-tidy not installed" >&2
  exit 1
fi
status=0
for f in lib/src/*/*.cpp mod_crane/*.cpp tools/*.cpp tools/*/*.cpp; do
  "$tidy" -p "$build" --quiet "$f" 2>/dev/null || { echo "clang-tidy: findings in $f"; status=1; }
done
[ $status -eq 0 ] && echo "clang-tidy: clean"
exit $status
