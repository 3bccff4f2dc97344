#!/usr/bin/env bash
# The GPU check: what lth can learn in one short slot on a GPU machine that has PyTorch 2.11 but
# no Rust and no network. `cargo xtask gpu-check` lays this folder out (the binary, its launcher,
# the PyTorch reference of the benchmark, the reproduction targets and Fashion-MNIST); this script
# runs it there:
#
#   bash gpu-check.sh RESULTS            # on the GPU machine: everything on cuda, within 8 minutes
#   bash gpu-check.sh RESULTS cpu        # the rehearsal on a CPU (limits ×4)
#
# Through the device tool, whose $OUT brings back 8 files at most, 2 folders down:
#   bash target/gpu-check/gpu-check.sh /tmp/r; cp /tmp/r/*.txt $OUT/; tar czf $OUT/r.tgz -C /tmp r
#
# Every step writes its output into RESULTS/<step>.txt and one line (exit status, seconds) into
# RESULTS/steps.txt; a step that overruns its limit is stopped (exit 124) and the next one runs,
# so the results of the steps that finished always come back. The steps:
#   info          lth.sh info: the libtorch, CUDA and cuDNN the binary sees
#   bench-models  lth against a PyTorch eager loop of the same networks (LeNet, ResNet-20, VGG-16),
#                 5 paired rounds
#   bench-packed  N copies packed against N separate runs, N = 1, 8, 16 (5 rounds)
#   smoke         every target at the smoke scale, --check, in up to 4 processes at once (one
#                 target each, sharing one run store; output in RESULTS/smoke/<target>.txt):
#                 claims and the paper's ranges judged; the cells against the committed cuda smoke
#                 snapshot where the target has one (an independent rerun on another GPU: cuda
#                 training is not bit-reproducible). A target without one is also recorded
#                 (--record, in the same run: no training again), into
#                 RESULTS/repro/<target>/expected.csv for a maintainer to commit
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
results=${1:?usage: gpu-check.sh RESULTS [cuda|cpu]}
device=${2:-cuda}
# On the CPU the benchmark times fewer steps: the rehearsal shows the script works, not speeds.
# Smoke targets run `parallel` at once, each process at `threads` intra-op threads.
case "$device" in
  cuda) slack=1; light=(--repeats 5); light_packed=(--repeats 5); parallel=4
        threads=$(( $(nproc) / 4 > 0 ? $(nproc) / 4 : 1 )) ;;
  cpu) slack=4; light=(--steps 30 --warmup 5 --repeats 2); light_packed=(--steps 20 --repeats 1)
       parallel=$(nproc); threads=1 ;;
  *) echo "gpu-check.sh: device must be cuda or cpu, not $device" >&2; exit 2 ;;
esac
mkdir -p "$results"
results=$(cd "$results" && pwd)
: > "$results/steps.txt"
# The run store is scratch: only the results travel back.
runs=$(mktemp -d "${TMPDIR:-/tmp}/lth-gpu-check.XXXXXX")
trap 'rm -rf "$runs"' EXIT
lth=("$here/lth.sh")
started=$(date +%s)

# step NAME LIMIT_SECONDS COMMAND...
step() {
  local name=$1 limit=$(( $2 * slack )) t0 code
  shift 2
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$results/$name.txt" 2>&1
  code=$?
  printf '%-13s exit %3d in %4d s (limit %d s)\n' "$name" "$code" "$(( $(date +%s) - t0 ))" "$limit" \
    | tee -a "$results/steps.txt"
}

# Whether the target folder $1 has a cuda smoke snapshot (measured cells of smoke on cuda).
has_cuda_snapshot() { grep -q ',measured,smoke,cuda,' "$1/expected.csv" 2>/dev/null; }
# The targets, those without a cuda smoke snapshot first: their record is what a check adds,
# so they start first should the smoke step run out of time.
targets=$(cd "$here/repro" && {
  for d in */; do [ -f "$d/spec.toml" ] && ! has_cuda_snapshot "$d" && printf '%s ' "${d%/}"; done
  for d in */; do [ -f "$d/spec.toml" ] && has_cuda_snapshot "$d" && printf '%s ' "${d%/}"; done
})
# The snapshots --record writes go into the results' copy of the targets.
rm -rf "$results/repro"
cp -r "$here/repro" "$results/repro"
common=(--scale smoke --device "$device" --repro-dir "$results/repro" --data-dir "$here/data"
        --runs-dir "$runs" --quiet)

# Limits (×1 on cuda) sum to 480 s: the whole check ends within 8 minutes. They are sized from
# two runs on an H200 (2026-12-04, 16 cores): info 5-8 s, bench-models 54-62 s with one round
# (mostly each reference's start; 5 paired rounds add about 30 s), bench-packed 158 s at
# N = 1, 2, 4, 8, 16 and 9 rounds, 74 s at N = 1, 8, 16 and 5 rounds. The smoke of the ten
# targets of then took 123-128 s in one process and their records 85 s more (about 8 s a target:
# each starts CUDA and reads its units again). Eighteen targets take 2.5 times the ten's CPU time
# at smoke (397 s against 159 s, one process of 2 threads on a 2-core CPU), hence one run per
# target that also records, four at a time.
step info 15 "${lth[@]}" info
step bench-models 110 "${lth[@]}" bench --suite models --device "$device" \
  --pytorch-script "$here/pytorch_eager.py" ${light[@]+"${light[@]}"}
step bench-packed 95 "${lth[@]}" bench --suite packed --copies 1,8,16 --device "$device" \
  ${light_packed[@]+"${light_packed[@]}"}
# One target: --check, and --record where the target has no cuda smoke snapshot yet (on the
# rehearsal too, so that it records the same targets, into the results' copy); its output in
# RESULTS/smoke/<target>.txt and one line (exit status, closing line) on stdout.
smoke_one() {
  local t=$1 record=() code
  has_cuda_snapshot "$results/repro/$t" || record=(--record)
  "${lth[@]}" repro "$t" --check ${record[@]+"${record[@]}"} --threads "$threads" \
    --out "$results/reports" "${common[@]}" > "$results/smoke/$t.txt" 2>&1
  code=$?
  printf '%-18s exit %d%s: %s\n' "$t" "$code" "${record:+ (recorded)}" \
    "$(tail -n 1 "$results/smoke/$t.txt")"
  return "$code"
}
mkdir -p "$results/smoke"
# xargs exits 123 when any target's run did not exit 0.
step smoke 260 xargs -P "$parallel" -n 1 bash -c \
  "$(declare -p lth common results threads); $(declare -f has_cuda_snapshot smoke_one); smoke_one \"\$1\"" _ \
  <<< "$targets"
echo "gpu-check on $device: $(( $(date +%s) - started )) s in all; results in $results" \
  | tee -a "$results/steps.txt"
