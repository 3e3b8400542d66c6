#!/usr/bin/env bash
# Runs on the GPU machine, in the repo root, from the bundle scripts/gpu_bundle.sh built (.gpu/, carried along):
# installs the wheels (once per machine), unpacks MNIST, then one stage, its log written to $OUT (the device tool
# brings $OUT back). Stages run one after another in one call: `.gpu/run.sh tests && .gpu/run.sh epoch`.
#   .gpu/run.sh tests [ARGS]    the `cuda` tests (about 4 minutes on an H100), ARGS passed to pytest (e.g. -k gp)
#   .gpu/run.sh suite           the rest of the suite (not slow) with the GPU visible (over 3.5 minutes)
#   .gpu/run.sh bench [ARGS]    python -m lipbench.bench --device cuda ARGS (e.g. --cases dcgan32-cifar --methods none gp sn)
#   .gpu/run.sh epoch           CIFAR-10-sized epochs (50k random images in CIFAR-10's own files) of none, gp and sn at
#                               scale=gpu, eager and in the fast mode (the defaults), with a 10k-sample FID on random
#                               Inception weights (speed only: the trained ones do not travel)
#   .gpu/run.sh sweep           a short GPU sweep: none, gp and sn on MNIST with the DCGAN, 2 epochs each
# Each stage is cut at STAGE_S seconds (default 540) so that its logs come back inside the device call's 10 minutes:
# give a call one stage, or lower STAGE_S to fit several.
set -uo pipefail
STAGE=${1:?usage: .gpu/run.sh tests|suite|bench|epoch|sweep [ARGS]}
shift
OUT=${OUT:-/tmp/lipbench-out}
STAGE_S=${STAGE_S:-540}
SITE=/tmp/site
mkdir -p "$OUT"
if [ ! -e "$SITE/.installed" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .gpu/wheels/*.whl \
        && touch "$SITE/.installed" || exit
fi
export PYTHONPATH=$PWD:$SITE PYTHONUNBUFFERED=1 WANDB_MODE=offline WANDB_SILENT=true
# tests/conftest.py finds MNIST at ../shared, as on the development machine; the sweep reads it from there too.
DATA=$(cd .. && pwd)/shared/data
if [ ! -e "$DATA/MNIST/raw/train-images-idx3-ubyte" ]; then
    mkdir -p "$DATA/MNIST/raw"
    for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "$DATA/MNIST/raw/$(basename "$f" .gz)"; done
fi
[ -e "$OUT/device.txt" ] || { nvidia-smi; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } \
    > "$OUT/device.txt" 2>&1
case $STAGE in
    tests)
        timeout "$STAGE_S" python3 -m pytest -p no:cacheprovider -m cuda -n 4 -rs --tb=short "$@" tests 2>&1 | tee "$OUT/tests_cuda.log" ;;
    suite)
        timeout "$STAGE_S" python3 -m pytest -p no:cacheprovider -m "not cuda and not slow" -n 12 tests 2>&1 \
            | tee "$OUT/tests_rest.log" ;;
    bench)
        timeout "$STAGE_S" python3 -m lipbench.bench --device cuda "$@" 2>&1 | tee -a "$OUT/bench.log" ;;
    epoch)
        # CIFAR-10's python pickles, filled with random images: an epoch's cost depends on shapes, not on pixels.
        python3 - "$DATA/cifar10" <<'PY'
import pickle, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1], "cifar-10-batches-py")
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    batch = {"data": rng.integers(0, 256, (10000, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, 10000).tolist()}
    (folder / name).write_bytes(pickle.dumps(batch))
PY
        weights=$(python3 -c "from lipbench.metrics.fid import write_random_inception as w; print(w('/tmp/random_inception.pth'))")
        for mode in eager fast; do
            fast=""  # the defaults: the fast mode
            [ $mode = eager ] && fast="train.optimizer_impl=for_loop train.compile=false train.cuda_graph=false"
            # shellcheck disable=SC2086
            timeout $((STAGE_S / 2)) python3 -m lipbench -m scale=gpu method=none,gp,sn "dataset.root=$DATA/cifar10" \
                train.epochs=2 metric.fid.weights="$weights" $fast device=cuda "hydra.sweep.dir=/tmp/epoch_$mode" \
                2>&1 | tee "$OUT/epoch_$mode.log"
        done
        tar -czf "$OUT/epoch_runs.tgz" -C /tmp --exclude='*.pt' --exclude=wandb epoch_eager epoch_fast ;;
    sweep)
        timeout "$STAGE_S" python3 -m lipbench -m method=none,gp,sn dataset=mnist "dataset.root=$DATA" model=dcgan \
            train.batch_size=64 train.epochs=2 metric=fd_classifier metric.fd_classifier.num_samples=2000 \
            device=cuda "hydra.sweep.dir=/tmp/sweep" 2>&1 | tee "$OUT/sweep.log"
        tar -czf "$OUT/sweep_runs.tgz" -C /tmp --exclude='*.pt' --exclude=wandb sweep ;;
    *)
        echo "unknown stage $STAGE: use tests, suite, bench, epoch or sweep" >&2; exit 2 ;;
esac
