#!/usr/bin/env bash
# The GPU check, as one script that finishes within 8 minutes on one H200. Each figure is a rate or
# a ratio measured in the same run:
#   1. trainer images/s against a bare loop: ResNet18, 32x32, batch 256, bf16, channels_last;
#   2. stacked training (training.stack) at K = 1, 4, 16, 64 for the MLP and the small CNN on
#      Fashion-MNIST: images/s and the speedup over one model at a time;
#   3. --jobs-per-device 1, 2, 4, 8 on a grid of 12 small Fashion-MNIST models, stacking off;
#   4. the airbench-style network's epoch time on CIFAR-shaped random images (50,000 per model), alone
#      and stacked;
#   5. a 64-model Fashion-MNIST pool grid (pool protocol, small CNN, CE, loss and online LiRA) with the
#      best settings (stack auto), wall time from an empty store;
#   6. batched Grad-x against the per-sample loop.
# A machine without a package manager (the lent GPU has PyTorch but no pydantic) needs what
# benchmarks/device_prepare.sh puts in the working tree: the wheels mibench lacks there (.whl/) and
# the Fashion-MNIST IDX files (benchmarks/fashion-mnist/). Then, from the repository root:
#   bash benchmarks/device_check.sh                      # on the GPU machine
#   DEVICE=cpu SMALL=1 bash benchmarks/device_check.sh   # a quick smoke test of the script (tests run it)
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
export MIBENCH_PROGRESS=0 PYTHONUNBUFFERED=1
if ! "$PY" -c "import mibench_plugins, pydantic" 2>/dev/null; then
    # mibench (and pydantic from .whl/) into a private site folder: no network, no package manager needed
    site="${MIBENCH_SITE:-/tmp/mibench-site}"
    wheels=(); [ -d .whl ] && wheels=(.whl/*.whl)
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$site" \
        "${wheels[@]}" . > /dev/null
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
root=/usr/share/datasets/fashion-mnist
[ -d "$root" ] || root="$(pwd)/benchmarks/fashion-mnist"
[ -d "$root" ] || { echo "no Fashion-MNIST IDX files in /usr/share/datasets/fashion-mnist or benchmarks/fashion-mnist" >&2; exit 2; }
precision=bf16; batches=20; rn_batch=256; stacks=(1 4 16 64); fm_samples=20000; pool=20000; epochs=8; pool_models=64
air_samples=100000; air_stacks=(1 4 16); gradx_models=(small-cnn resnet18); jobs=(1 2 4 8)
if [ -n "${SMALL:-}" ]; then
    precision=fp32; batches=2; rn_batch=16; stacks=(1 2); fm_samples=1000; pool=1000; epochs=1; pool_models=6
    air_samples=256; air_stacks=(1 2); gradx_models=(small-cnn); jobs=(1 2)
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
now() { "$PY" -c 'import time; print(time.time())'; }
"$PY" -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"

echo "== 1. trainer vs bare loop: resnet18, 32x32, batch $rn_batch, $precision, channels_last on $DEVICE"
timeout 100 "$PY" -m benchmarks.throughput --arch resnet18 --batch-size "$rn_batch" --precision "$precision" \
    --device "$DEVICE" --batches "$batches" --repeats 2 || echo "(throughput check failed or timed out)"

echo "== 2. stacked training, K = ${stacks[*]}: mlp and small-cnn on Fashion-MNIST"
timeout 100 "$PY" -m benchmarks.stacking --arch mlp small-cnn --stacks "${stacks[@]}" --device "$DEVICE" \
    --samples "$fm_samples" --epochs 1 --precision "$precision" --root "$root" || echo "(stacking check failed or timed out)"

echo "== 3. --jobs-per-device ${jobs[*]} on 12 small-cnn models (stack off)"
cat > "$tmp/grid.yaml" <<GRID
name: jobs-per-device
device: $DEVICE
datasets: [{name: fashion-mnist, params: {pool_size: $pool, root: $root}}]
architectures: [small-cnn]
defenses: [ce, {name: label-smoothing, params: {epsilon: 0.1}}, {name: confidence-penalty, params: {}}]
attacks: [loss]
training: {epochs: $epochs, batch_size: 128, optimizer: {name: sgd, lr: 0.05}, stack: off}
shadow: {count: 3}
GRID
declare -A took
for k in "${jobs[@]}"; do
    devices="$DEVICE"; [ "$DEVICE" = cuda ] && devices=cuda:0
    extra=(--executor local --devices "$devices" --jobs-per-device "$k")
    [ "$DEVICE" = cpu ] && extra=(--executor serial)
    start=$(now)
    timeout 90 "$PY" -m mibench run "$tmp/grid.yaml" --output "$tmp/run-$k" "${extra[@]}" > "$tmp/log-$k" 2>&1 \
        || { echo "jobs-per-device $k failed:"; tail -5 "$tmp/log-$k"; }
    took[$k]=$("$PY" -c "import time; print(round(time.time() - $start, 1))")
    echo "jobs-per-device $k: ${took[$k]} s"
done
for k in "${jobs[@]}"; do
    "$PY" -c "print(f'  speedup of $k jobs per device over 1: {${took[${jobs[0]}]} / ${took[$k]}:.2f}x')"
done

echo "== 4. airbench-style network on CIFAR-shaped random images, batch 1024, $precision"
timeout 100 "$PY" -m benchmarks.stacking --arch airbench --data random --shape 3,32,32 --samples "$air_samples" \
    --batch-size 1024 --stacks "${air_stacks[@]}" --device "$DEVICE" --precision "$precision" --epoch-time \
    || echo "(airbench check failed or timed out)"

echo "== 5. a $pool_models-model Fashion-MNIST pool grid (stack auto), from an empty store"
cat > "$tmp/pool.yaml" <<GRID
name: pool-$pool_models
device: $DEVICE
protocol: pool
pool: {models: $pool_models, dataset_fraction: 0.5}
datasets: [{name: fashion-mnist, params: {pool_size: $pool, root: $root}}]
architectures: [small-cnn]
defenses: [ce]
attacks: [loss, {name: lira, params: {mode: online}}]
training: {epochs: $epochs, batch_size: 128, precision: $precision, optimizer: {name: sgd, lr: 0.05}, stack: auto}
GRID
[ "$DEVICE" = cpu ] && sed -i "s/stack: auto/stack: 6/" "$tmp/pool.yaml"
start=$(now)
timeout 120 "$PY" -m mibench run "$tmp/pool.yaml" --output "$tmp/pool" --executor serial > "$tmp/log-pool" 2>&1 \
    || { echo "pool grid failed:"; tail -5 "$tmp/log-pool"; }
echo "pool of $pool_models models: $("$PY" -c "import time; print(round(time.time() - $start, 1))") s wall," \
     "$(grep -c '^train  stack of' "$tmp/log-pool" || true) stack job(s)"

echo "== 6. batched Grad-x vs the per-sample loop"
timeout 80 "$PY" -m benchmarks.gradx --device "$DEVICE" --models "${gradx_models[@]}" --repeats 1 \
    || echo "(gradx check failed or timed out)"
