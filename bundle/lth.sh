#!/bin/sh
# Runs the bundled `lth` on a machine that has PyTorch 2.11 (or a libtorch 2.11) but no Rust
# toolchain: points the dynamic loader at that machine's libtorch, then runs the binary.
#
#   ./lth.sh info                 # libtorch threads, CUDA, cuDNN as the machine's libtorch sees them
#   ./lth.sh bench --suite models --device cuda
#
# LIBTORCH=/path/to/libtorch (a folder with lib/libtorch_cpu.so) takes precedence over PyTorch;
# PYTHON (default python3) is the interpreter asked where torch lives.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
want=2.11
if [ -n "${LIBTORCH:-}" ]; then
    lib="$LIBTORCH/lib"
else
    py=${PYTHON:-python3}
    found=$("$py" -c 'import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) || {
        echo "lth.sh: $py cannot import torch; install PyTorch $want (with CUDA, for GPUs) or set LIBTORCH" >&2
        exit 1
    }
    version=$(echo "$found" | sed -n 1p)
    lib=$(echo "$found" | sed -n 2p)
    case "$version" in
        "$want".*) ;;
        *) echo "lth.sh: $py has torch $version, but this lth was built for $want" >&2; exit 1 ;;
    esac
fi
if [ ! -f "$lib/libtorch_cpu.so" ]; then
    echo "lth.sh: $lib holds no libtorch_cpu.so" >&2
    exit 1
fi
LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$here/lth" "$@"
