#!/bin/bash
# What `lth repro --jobs` rests on: on a small CPU, do one-thread processes side by side train more
# per minute than one process with every thread? For LeNet-300-100 (the LeNet targets' network,
# batch 60, Adam; five epochs, so that starting a process weighs little) and the VGG-11/8 stand-in
# (rewinding, rethinking, lmc; batch 128, SGD; one epoch), on Fashion-MNIST: N runs one after
# another at --threads N, against N processes at --threads 1 started together (N: the
# processors). Two rounds; prints each wall time and the ratio (in turn ÷ side by side: above 1,
# the processes side by side train more per minute).
# Usage: bench/jobs.sh [path/to/lth] (default: target/release/lth); needs Fashion-MNIST (cargo
# xtask setup fetches it); about 2 minutes on a 2-core machine.
set -u
L=${1:-target/release/lth}
N=$(nproc)
lenet=(--model lenet_300_100 --dataset fashion-mnist --steps 5ep --batch-size 60 --optimizer adam --lr 0.0012)
vgg=(--model cifar_vgg_11:channels=8,16,32,32,64,64,64,64 --dataset fashion-mnist --steps 1ep
  --batch-size 128 --optimizer sgd --momentum 0.9 --lr 0.1 --augment false)
train() { # replicate, then lth's flags
  local d
  d=$(mktemp -d)
  "$L" train --replicate "$1" --runs-dir "$d" --quiet "${@:2}" > /dev/null 2> "$d.err" ||
    { cat "$d.err"; exit 1; }
  rm -rf "$d" "$d.err"
}
now() { date +%s.%N; }
measure() { # label, then the model's flags
  local t0 after side
  t0=$(now)
  for r in $(seq 1 "$N"); do train "$r" --threads "$N" "${@:2}"; done
  after=$(echo "$(now) - $t0" | bc)
  t0=$(now)
  for r in $(seq 1 "$N"); do train "$r" --threads 1 "${@:2}" & done
  wait
  side=$(echo "$(now) - $t0" | bc)
  printf '%-14s %d runs: one after another at %d threads %6.1f s, %d processes of 1 thread %6.1f s, ratio %.2f\n' \
    "$1" "$N" "$N" "$after" "$N" "$side" "$(echo "$after / $side" | bc -l)"
}
for _ in 1 2; do
  measure "LeNet-300-100" "${lenet[@]}"
  measure "VGG-11/8" "${vgg[@]}"
done
