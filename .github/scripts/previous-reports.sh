#!/usr/bin/env bash
# The nightly workflow's comparison step: fetch the reports of the last completed nightly run (its
# artifact) into previous/, and point $PREVIOUS at them for nightly-repro.sh. Needs the GitHub CLI
# (`gh`) on the runner and GH_TOKEN; without either, or on the first night, there is nothing to
# compare with and the step says so.
set -euo pipefail
if ! command -v gh >/dev/null; then
  echo "no previous reports: the GitHub CLI (gh) is not installed on this runner"
  exit 0
fi
run=$(gh run list --workflow nightly.yml --status completed --limit 1 \
  --json databaseId --jq '.[0].databaseId // empty')
if [ -z "$run" ]; then
  echo "no previous reports: this is the first completed nightly run"
  exit 0
fi
rm -rf previous
gh run download "$run" --dir previous
summary=$(find previous -name summary.md -print -quit)
if [ -z "$summary" ]; then
  echo "no previous reports: run $run kept no summary.md"
  exit 0
fi
echo "PREVIOUS=$(dirname "$summary")" >> "$GITHUB_ENV"
echo "comparing with run $run ($(dirname "$summary"))"
