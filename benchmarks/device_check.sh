#!/usr/bin/env bash
# The GPU check of the executors issue, as one script that finishes within 8 minutes on one GPU:
#   1. trainer images/s against a bare loop: ResNet18, batch 256, bf16 (benchmarks/throughput.py);
#   2. the speedup of --jobs-per-device 1, 2, 4 on a grid of small Fashion-MNIST models;
#   3. batched Grad-x against the per-sample loop (benchmarks/gradx.py).
# Fashion-MNIST comes from the Debian package, or from the four IDX files copied beside this
# script (benchmarks/fashion-mnist/) on a machine without a package manager.
#   bash benchmarks/device_check.sh            # on a GPU machine
#   DEVICE=cpu SMALL=1 bash benchmarks/device_check.sh   # a quick smoke test of the script itself
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
export MIBENCH_PROGRESS=0
root=/usr/share/datasets/fashion-mnist
[ -d "$root" ] || root="$(pwd)/benchmarks/fashion-mnist"
[ -d "$root" ] || { echo "no Fashion-MNIST IDX files in /usr/share/datasets/fashion-mnist or benchmarks/fashion-mnist" >&2; exit 2; }
epochs=8; pool=20000; precision=bf16; batches=20
if [ -n "${SMALL:-}" ]; then epochs=1; pool=1000; precision=fp32; batches=2; fi

echo "== 1. trainer vs bare loop: resnet18, batch 256, $precision on $DEVICE"
timeout 150 "$PY" -m benchmarks.throughput --arch resnet18 --batch-size 256 --precision "$precision" \
    --device "$DEVICE" --batches "$batches" --repeats 2 || echo "(throughput check failed or timed out)"

echo "== 2. --jobs-per-device 1, 2, 4 on 12 small-cnn models"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/grid.yaml" <<GRID
name: jobs-per-device
device: $DEVICE
datasets: [{name: fashion-mnist, params: {pool_size: $pool, root: $root}}]
architectures: [small-cnn]
defenses: [ce, {name: label-smoothing, params: {epsilon: 0.1}}, {name: confidence-penalty, params: {}}]
attacks: [loss]
training: {epochs: $epochs, batch_size: 128, optimizer: {name: sgd, lr: 0.05}}
shadow: {count: 3}
GRID
declare -A took
now() { "$PY" -c 'import time; print(time.time())'; }
for k in 1 2 4; do
    devices="$DEVICE"; [ "$DEVICE" = cuda ] && devices=cuda:0
    extra=(--executor local --devices "$devices" --jobs-per-device "$k")
    [ "$DEVICE" = cpu ] && extra=(--executor serial)
    start=$(now)
    timeout 150 "$PY" -m mibench run "$tmp/grid.yaml" --output "$tmp/run-$k" "${extra[@]}" > "$tmp/log-$k" 2>&1 \
        || { echo "jobs-per-device $k failed:"; tail -5 "$tmp/log-$k"; }
    took[$k]=$("$PY" -c "import time; print(time.time() - $start)")
    echo "jobs-per-device $k: ${took[$k]} s"
done
"$PY" -c "print(f'speedup of 2 and 4 jobs per device over 1: {${took[1]} / ${took[2]}:.2f}x, {${took[1]} / ${took[4]}:.2f}x')"

echo "== 3. batched Grad-x vs the per-sample loop"
models=(small-cnn resnet18); [ -n "${SMALL:-}" ] && models=(small-cnn)
timeout 120 "$PY" -m benchmarks.gradx --device "$DEVICE" --models "${models[@]}" --repeats 1 \
    || echo "(gradx check failed or timed out)"
