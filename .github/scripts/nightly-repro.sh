#!/usr/bin/env bash
# The nightly workflow's reproduction step: every target (or those of $TARGETS) at $SCALE on CUDA,
# judged; exits non-zero on any FAIL. Run from the repository root.
set -euo pipefail
scale="${SCALE:-quick}"
# Each cell's change since last night, when previous-reports.sh found that night's reports.
previous=()
if [ -n "${PREVIOUS:-}" ]; then
  previous=(--previous "$PREVIOUS")
fi
if [ -z "${TARGETS:-}" ]; then
  cargo xtask repro --all --scale "$scale" --device cuda --check ${previous[@]+"${previous[@]}"}
else
  status=0
  for t in $TARGETS; do
    cargo xtask repro "$t" --scale "$scale" --device cuda --check ${previous[@]+"${previous[@]}"} || status=1
  done
  exit "$status"
fi
