#!/bin/bash
# One epoch of the VGG-11/8 stand-in, quiet and then beside two busy processes (`yes` loops), at
# libtorch's thread count (--threads 2 on a 2-core machine) and with no --threads (the count lth
# chooses from the free processors), two runs of each, alternating. Prints one line per run.
# Usage: bench/busy-machine.sh [path/to/lth] (default: target/release/lth); needs Fashion-MNIST
# (cargo xtask setup fetches it) and takes about 4 minutes on a 2-core machine.
set -u
L=${1:-target/release/lth}
N=$(nproc)
run() { # label, then lth's extra flags
  local d
  d=$(mktemp -d)
  local t0 t1
  t0=$(date +%s.%N)
  "$L" train --model cifar_vgg_11:channels=8,16,32,32,64,64,64,64 --dataset fashion-mnist \
    --steps 1ep --batch-size 128 --optimizer sgd --momentum 0.9 --lr 0.1 --augment false \
    --runs-dir "$d" "${@:2}" > /dev/null 2> "$d.err" || { cat "$d.err"; exit 1; }
  t1=$(date +%s.%N)
  printf '%-28s %6.1f s  %s\n' "$1" "$(echo "$t1 - $t0" | bc)" "$(grep -o 'threads: .*' "$d.err" | head -1)"
  rm -rf "$d" "$d.err"
}
for _ in 1 2; do
  run "quiet, --threads $N" --threads "$N"
  run "quiet, chosen"
done
pids=()
for _ in 1 2; do
  yes > /dev/null &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
sleep 2
for _ in 1 2; do
  run "loaded, --threads $N" --threads "$N"
  run "loaded, chosen"
done
