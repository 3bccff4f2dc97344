"""PyTorch reference for `lth bench --suite synflow`: SynFlow written plainly, as in Tanaka et al.'s
published code, in float64.

VGG-16 with BatchNorm at CIFAR-100 shapes (the network of `pytorch_eager.py`, 100 classes). Every
parameter and buffer is replaced by its absolute value; each of the `rounds` rounds multiplies the
prunable weights (convolution and linear kernels) by their masks, runs one all-ones input in
evaluation mode, back-propagates the sum of the output, scores |θ ⊙ ∂R/∂θ|, and keeps the weights
above the global k-th smallest score, pruning toward density^(round/rounds). Prints one JSON line
with the seconds the rounds took and the weights kept. Only torch is needed.

    python3 synflow_pytorch.py --rounds 100 --density 0.01 --threads 2
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_eager import Vgg  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = Vgg(args.classes).to(dev).double().eval()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    prunable = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    masks = [torch.ones_like(w) for w in prunable]
    total = sum(w.numel() for w in prunable)
    ones = torch.ones(1, 3, 32, 32, dtype=torch.float64, device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    for r in range(1, args.rounds + 1):
        with torch.no_grad():
            for w, m in zip(prunable, masks):
                w.mul_(m)
        model.zero_grad()
        model(ones).sum().backward()
        scores = [(w.grad * w).detach().abs() for w in prunable]
        density = args.density ** (r / args.rounds)
        prune = math.floor((1 - density) * total)
        if prune < 1:
            continue
        threshold = torch.kthvalue(torch.cat([s.flatten() for s in scores]), prune).values
        masks = [(s > threshold).double() for s in scores]
    sync()
    seconds = time.perf_counter() - start
    kept = int(sum(m.sum().item() for m in masks))
    print(json.dumps({"seconds": seconds, "kept": kept, "total": total}))


if __name__ == "__main__":
    main()
