#!/usr/bin/env bash
# Builds .gpu/ (git-ignored), what a bare GPU machine with PyTorch preinstalled needs to test, benchmark and sweep
# lipbench: the wheels of lipbench's other dependencies for CPython 3.12 on x86-64 Linux, MNIST's four IDX files
# gzipped, and .gpu/run.sh, the command to run there. Checks that pip installs the wheels offline and that the whole
# of .gpu/ fits the 64 MiB a device call carries. README "Running on a GPU" says how to use it.
#   scripts/gpu_bundle.sh [MNIST_RAW_DIR]      (default ../shared/data/MNIST/raw; PYTHON=... picks the pip to use)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
MNIST_RAW=${1:-../shared/data/MNIST/raw}
BUNDLE=.gpu
LIMIT_MIB=64

# What the GPU image lacks (its package list: the device tool's KINDS.md), with what those need in turn, pinned to the
# versions lipbench is tested with here. It already has torch, torchvision, numpy, scipy, scikit-learn, matplotlib,
# pillow, tqdm, pytest, pytest-xdist, protobuf, pyyaml, requests, click, joblib. POT is the one older pin: 0.9.7's
# wheel is 33 MB (half the budget), 0.9.6.post1's 1.5 MB, and lipbench calls only ot.dist and ot.emd2.
WHEELS=(
    hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0
    pytorch-fid==0.3.0 pot==0.9.6.post1
    wandb==0.31.0 cwevals==0.0.1b1 distro==1.9.0 platformdirs==4.14.7 sniffio==1.3.1
    pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
    googleapis-common-protos==1.76.0 opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-proto==1.45.2
    opentelemetry-semantic-conventions==0.66b2 opentelemetry-exporter-otlp-proto-common==1.45.2
    opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-exporter-http-transport==0.66b2
    opentelemetry-exporter-otlp-common==0.66b2
)
# pip matches a manylinux tag exactly: name the glibc versions wheels are commonly built for.
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 --platform any)

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels" "$BUNDLE/mnist"
"$PYTHON" -m pip download -q --no-deps "${TARGET[@]}" -d "$BUNDLE/wheels" "${WHEELS[@]}"
# Hydra needs antlr4's runtime 4.9, published as source only: built here into a pure-Python wheel.
"$PYTHON" -m pip wheel -q --no-deps -w "$BUNDLE/wheels" antlr4-python3-runtime==4.9.3
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    gzip -9 -c "$MNIST_RAW/$name" > "$BUNDLE/mnist/$name.gz"
done
cp scripts/gpu_run.sh "$BUNDLE/run.sh"

# The wheels install offline, as they will there (no index; every dependency named above or on the image).
"$PYTHON" -m pip install -q --dry-run --no-index --no-deps "${TARGET[@]}" --target "$(mktemp -d)" "$BUNDLE"/wheels/*.whl
size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "$BUNDLE: $(ls "$BUNDLE/wheels" | wc -l) wheels, MNIST, run.sh: $((size_kib / 1024)) MiB of the ${LIMIT_MIB} MiB a call carries"
if (( size_kib > LIMIT_MIB * 1024 )); then
    echo "$BUNDLE is over ${LIMIT_MIB} MiB: it cannot travel to the GPU machine" >&2
    exit 1
fi
