#!/usr/bin/env bash
# The nightly workflow's reproduction step: every target (or those of $TARGETS) at $SCALE on CUDA,
# judged against the cuda snapshots. Exit status: 0 when every outcome is as expected (PASS,
# XFAIL, INCONCLUSIVE, SKIPPED), 1 on an unexpected outcome (FAIL or XPASS), 2 on an error (a bad
# spec, a crashed target, data or CUDA absent). With RECORD=true it records the cuda snapshots
# instead and copies every target's expected.csv and provenance.csv into target/repro/snapshot/,
# which the workflow keeps as an artifact for a maintainer to review and commit. Run from the
# repository root.
set -uo pipefail
scale="${SCALE:-quick}"
say() {
  # A workflow annotation on GitHub, a plain line elsewhere.
  if [ -n "${GITHUB_ACTIONS:-}" ]; then echo "::error::$1"; else echo "$1" >&2; fi
}
verdict() {
  case "$1" in
    0) echo "every outcome as expected" ;;
    1) say "unexpected outcomes (FAIL or XPASS): a regression, a contradicted claim, or a declared deviation that holds now; see target/repro/summary.md" ;;
    *) say "an error (exit $1): a target could not run (bad spec, crash, data or CUDA absent); see the log" ;;
  esac
  exit "$1"
}
targets="${TARGETS:-}"
if [ -z "$targets" ]; then
  targets=$(cd repro && for d in */; do [ -f "$d/spec.toml" ] && printf '%s ' "${d%/}"; done)
fi
if [ "${RECORD:-false}" = "true" ]; then
  status=0
  for t in $targets; do
    cargo xtask repro "$t" --scale "$scale" --device cuda --record || status=2
  done
  mkdir -p target/repro/snapshot
  for t in $targets; do
    mkdir -p "target/repro/snapshot/$t"
    cp "repro/$t/expected.csv" "repro/$t/provenance.csv" "target/repro/snapshot/$t/"
  done
  verdict "$status"
fi
# Each cell's change since last night, when previous-reports.sh found that night's reports.
previous=()
if [ -n "${PREVIOUS:-}" ]; then
  previous=(--previous "$PREVIOUS")
fi
if [ -z "${TARGETS:-}" ]; then
  cargo xtask repro --all --scale "$scale" --device cuda --check ${previous[@]+"${previous[@]}"}
  verdict "$?"
fi
status=0
for t in $targets; do
  cargo xtask repro "$t" --scale "$scale" --device cuda --check ${previous[@]+"${previous[@]}"}
  code=$?
  # An error outranks an unexpected outcome.
  if [ "$code" -gt "$status" ]; then status=$code; fi
done
verdict "$status"
