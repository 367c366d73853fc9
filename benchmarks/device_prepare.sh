#!/usr/bin/env bash
# Puts in this working tree what benchmarks/device_check.sh needs on a GPU machine that has PyTorch
# but no pydantic and no network: pydantic's wheels for CPython 3.12 on x86-64 (.whl/) and the
# Fashion-MNIST IDX files (benchmarks/fashion-mnist/, from Debian's dataset-fashion-mnist). Both
# folders are git-ignored; name them in the device run's carry. Run it here, with the registries.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl benchmarks/fashion-mnist
platforms=()
for n in 2_28 2_27 2_17 2014; do
    case $n in 2014) platforms+=(--platform manylinux2014_x86_64) ;; *) platforms+=(--platform "manylinux_${n}_x86_64") ;; esac
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
cp /usr/share/datasets/fashion-mnist/* benchmarks/fashion-mnist/
ls .whl benchmarks/fashion-mnist
du -sh .whl benchmarks/fashion-mnist
