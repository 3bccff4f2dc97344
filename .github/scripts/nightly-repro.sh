#!/usr/bin/env bash
# The nightly workflow's reproduction step: every target (or those of $TARGETS) at $SCALE on CUDA,
# judged; exits non-zero on any FAIL. Run from the repository root.
set -euo pipefail
scale="${SCALE:-quick}"
if [ -z "${TARGETS:-}" ]; then
  cargo xtask repro --all --scale "$scale" --device cuda --check
else
  status=0
  for t in $TARGETS; do
    cargo xtask repro "$t" --scale "$scale" --device cuda --check || status=1
  done
  exit "$status"
fi
