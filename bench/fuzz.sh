#!/usr/bin/env bash
# Kept for old habits: the fuzz runner lives in tests/fuzz/run.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/../tests/fuzz/run.sh" "$@"
