#!/usr/bin/env bash
# Runs on the GPU machine, in the repo root, from the bundle scripts/gpu_bundle.sh built (.gpu/, carried along):
# installs the wheels, unpacks MNIST, then one stage, its log written to $OUT (the device tool brings $OUT back).
#   .gpu/run.sh tests           the `cuda` tests, then the rest of the suite (not slow) with the GPU visible
#   .gpu/run.sh bench [ARGS]    python -m lipbench.bench --device cuda ARGS (e.g. --cases dcgan32-cifar --methods none gp sn)
#   .gpu/run.sh sweep           a short GPU sweep: none, gp and sn on MNIST with the DCGAN, 2 epochs each
# Each stage fits one device call (10 minutes); every command is cut at STAGE_S seconds so that its log comes back.
set -uo pipefail
STAGE=${1:?usage: .gpu/run.sh tests|bench|sweep [ARGS]}
shift
OUT=${OUT:-/tmp/lipbench-out}
STAGE_S=${STAGE_S:-540}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl || exit
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 WANDB_MODE=offline WANDB_SILENT=true
# tests/conftest.py finds MNIST at ../shared, as on the development machine; the sweep reads it from there too.
DATA=$(cd .. && pwd)/shared/data
if [ ! -e "$DATA/MNIST/raw/train-images-idx3-ubyte" ]; then
    mkdir -p "$DATA/MNIST/raw"
    for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "$DATA/MNIST/raw/$(basename "$f" .gz)"; done
fi
{ nvidia-smi; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } \
    > "$OUT/device.txt" 2>&1
case $STAGE in
    tests)
        timeout "$STAGE_S" python3 -m pytest -p no:cacheprovider -m cuda -n 0 -rs tests 2>&1 | tee "$OUT/tests_cuda.log"
        timeout "$STAGE_S" python3 -m pytest -p no:cacheprovider -m "not cuda and not slow" -n 12 tests 2>&1 \
            | tee "$OUT/tests_rest.log" ;;
    bench)
        timeout "$STAGE_S" python3 -m lipbench.bench --device cuda "$@" 2>&1 | tee "$OUT/bench.log" ;;
    sweep)
        timeout "$STAGE_S" python3 -m lipbench -m method=none,gp,sn dataset=mnist "dataset.root=$DATA" model=dcgan \
            train.batch_size=64 train.epochs=2 metric=fd_classifier metric.fd_classifier.num_samples=2000 \
            device=cuda "hydra.sweep.dir=$OUT/sweep" 2>&1 | tee "$OUT/sweep.log" ;;
    *)
        echo "unknown stage $STAGE: use tests, bench or sweep" >&2; exit 2 ;;
esac
