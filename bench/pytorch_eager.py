"""PyTorch eager reference for `lth bench --suite models`: the same networks, recipe and data path.

Trains LeNet-300-100 (MNIST-shaped data, Adam 1.2e-3), CIFAR ResNet-20 or VGG-16 with BatchNorm
(CIFAR-shaped data, SGD with momentum 0.9, lr 0.1, weight decay 1e-4, pad-4 crop + flip
augmentation) on synthetic uint8 data held on the device, and prints one JSON line with the
training throughput. The architectures follow OpenLTH's (mnist_lenet_300_100, cifar_resnet_20,
cifar_vgg_16). Only torch is needed.

    python3 pytorch_eager.py --model cifar_resnet_20 --device cuda --steps 200

With --serve it warms up once, then times one round of --steps steps for every line read on
stdin, printing one JSON line per round, until stdin closes: `lth bench --suite models` drives
it so that its own rounds and these alternate (paired rounds in one run, so drift cancels).
"""

import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc_layers = nn.ModuleList([nn.Linear(784, 300), nn.Linear(300, 100)])
        self.fc = nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.fc_layers:
            x = F.relu(layer(x))
        return self.fc(x)


class Block(nn.Module):
    def __init__(self, f_in, f_out, downsample):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(f_in, f_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        if downsample or f_in != f_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(f_in, f_out, 1, stride=2, bias=False), nn.BatchNorm2d(f_out)
            )
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depth=20, width=16):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, c = [], width
        for stage, filters in enumerate([width, 2 * width, 4 * width]):
            for i in range(n):
                blocks.append(Block(c, filters, stage > 0 and i == 0))
                c = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.avg_pool2d(out, out.size()[3]).flatten(1)
        return self.fc(out)


class Vgg(nn.Module):
    PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]

    def __init__(self, classes=10):
        super().__init__()
        layers, c = [], 3
        for spec in self.PLAN:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, spec, 3, padding=1), nn.BatchNorm2d(spec), nn.ReLU()]
                c = spec
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = F.avg_pool2d(self.layers(x), 2).flatten(1)
        return self.fc(x)


def augment(images, pad=4):
    """Pad-4 random crop and horizontal flip of a uint8 batch, on the batch's device."""
    b, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=dev)
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=dev)
    flip = torch.rand(b, 1, device=dev) < 0.5
    ar_w = torch.arange(w, device=dev)
    cols = torch.where(flip, ar_w.flip(0).unsqueeze(0), ar_w.unsqueeze(0)) + dx
    rows = torch.arange(h, device=dev).unsqueeze(0) + dy
    rows = rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * pad)
    cols = cols.view(b, 1, 1, w).expand(b, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cifar_resnet_20",
                   choices=["lenet_300_100", "cifar_resnet_20", "cifar_vgg_16"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--examples", type=int, default=50000)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--serve", action="store_true",
                   help="time one round per line read on stdin, until it closes")
    args = p.parse_args()

    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    if args.model == "lenet_300_100":
        model, shape, mean, std = LeNet(), (1, 28, 28), [0.1307], [0.3081]
        opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
        aug = False
    else:
        model = ResNet() if args.model == "cifar_resnet_20" else Vgg()
        shape, mean, std = (3, 32, 32), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        opt = None
        aug = True
    model = model.to(dev)
    memory_format = torch.channels_last if args.channels_last and len(shape) == 3 and shape[0] == 3 else None
    if memory_format is not None:
        model = model.to(memory_format=memory_format)
    if opt is None:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images = torch.randint(0, 256, (args.examples, *shape), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (args.examples,), device=dev)
    c = shape[0]
    scale = (1.0 / (255.0 * torch.tensor(std, device=dev))).view(1, c, 1, 1)
    shift = (-torch.tensor(mean, device=dev) / torch.tensor(std, device=dev)).view(1, c, 1, 1)
    model.train()

    def step():
        idx = torch.randint(0, args.examples, (args.batch_size,), device=dev)
        x = images.index_select(0, idx)
        if aug:
            x = augment(x)
        x = x.float() * scale + shift
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss = F.cross_entropy(model(x), labels.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def round_():
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        sync()
        seconds = time.perf_counter() - start
        print(json.dumps({
            "model": args.model,
            "device": str(dev),
            "torch": torch.__version__,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "seconds": seconds,
            "images_per_second": args.steps * args.batch_size / seconds,
            "final_loss": float(loss.detach()),
        }), flush=True)

    for _ in range(args.warmup):
        step()
    sync()
    if args.serve:
        print(json.dumps({"ready": True}), flush=True)
        for _ in sys.stdin:
            round_()
    else:
        round_()


if __name__ == "__main__":
    main()
