"""Loads a ticket written by `lth export --sparse` into PyTorch, with torch alone.

    python3 load_sparse_ticket.py TICKET.safetensors   # prints each layer: shape, kept weights

As a module: `load(path)` returns {PyTorch name: tensor}, each `<layer>.weight` a
torch.sparse_csr_tensor (from its crow_indices, col_indices, values and size) and each
`<layer>.bias` dense; `forward(ticket, x)` runs the network (ReLU between layers, none after the
last) with torch's sparse CSR products. The file is safetensors: an 8-byte little-endian header
length, a JSON header, then the raw tensors; it is read here without the safetensors package.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = memoryview(data)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def load(path):
    raw = read_safetensors(path)
    ticket = {}
    for name in raw:
        if name.endswith(".weight.crow_indices"):
            w = name[: -len(".crow_indices")]
            size = raw[w + ".size"].tolist()
            ticket[w] = torch.sparse_csr_tensor(
                raw[w + ".crow_indices"], raw[w + ".col_indices"], raw[w + ".values"], size
            )
        elif name.endswith(".bias"):
            ticket[name] = raw[name]
    return ticket


def layers(ticket):
    """The layers' names in the network's order: fc_layers.0, fc_layers.1, ..., fc."""
    hidden = sorted(
        (n[: -len(".weight")] for n in ticket if n.startswith("fc_layers.") and n.endswith(".weight")),
        key=lambda n: int(n.split(".")[1]),
    )
    return hidden + ["fc"]


def forward(ticket, x):
    h = x.reshape(x.shape[0], -1).t()
    names = layers(ticket)
    for i, name in enumerate(names):
        h = torch.addmm(ticket[name + ".bias"].unsqueeze(1), ticket[name + ".weight"], h)
        if i < len(names) - 1:
            h = h.relu()
    return h.t()


if __name__ == "__main__":
    ticket = load(sys.argv[1])
    for name in layers(ticket):
        w = ticket[name + ".weight"]
        print(f"{name}.weight: {w.shape[0]}x{w.shape[1]}, {w.values().numel()} kept")
    x = torch.linspace(-1, 1, 2 * 784).reshape(2, 1, 28, 28)
    print("logits of a fixed input:", " ".join(f"{v:.6f}" for v in forward(ticket, x)[0].tolist()))
