#!/usr/bin/env bash
# Installs dependencies, builds mod_crane twice (normal, and ASan+UBSan) and
# runs every test in both builds: unit tests, then the integration tests
# against a real httpd under the event and the prefork MPM (one ctest entry
# per file and MPM). CRANE_TEST_JOBS: tests run at once (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
status=0
for variant in release asan; do
  dir=build/$variant
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
  [ "$variant" = asan ] && flags=(-DCMAKE_BUILD_TYPE=Debug -DCRANE_SANITIZE=ON)
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "=== $variant: ctest"
  # two tests at a time (CI has 2 cores); the ones that must run alone say so
  # in tests/CMakeLists.txt (RUN_SERIAL, RESOURCE_LOCK)
  (cd "$dir" && ctest -j"${CRANE_TEST_JOBS:-2}" --output-on-failure) || status=1
done
exit $status
