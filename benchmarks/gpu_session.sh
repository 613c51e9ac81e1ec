#!/usr/bin/env bash
# The GPU measurements behind docs/performance.md, in stages meant to fit one device call each
# (10 minutes on one H200; the "all" stage ran past it there: split it when the budget is short). Run from the repository root, with keras, libensemble and pydantic
# carried as wheels in .whl/ (the GPU image has JAX but neither):
#   bash benchmarks/gpu_session.sh levers|all|study
# Each stage writes its JSON under $OUT (or runs/gpu) after every measurement.
set -uo pipefail
stage=${1:?levers, all or study}
out=${OUT:-runs/gpu}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
bench() { python3 benchmarks/gpu_ensemble.py --epochs 2 --batches 8 "$@"; }

case $stage in
levers)  # which lever pays, on the cheapest and a gated cell: precision, unrolling, K, remat, the fused kernel
    bench --architectures lstm rnn --k 64 --precision float32 bfloat16 --unroll 1 8 --json "$out/levers_k64.json"
    bench --architectures lstm rnn --k 256 --precision float32 bfloat16 --unroll 8 --no-peak \
        --json "$out/levers_k256.json"
    bench --architectures lstm --k 512 --precision bfloat16 --unroll 8 --remat 1 --no-peak \
        --json "$out/levers_remat.json"
    # the fused Pallas kernel (never run on a GPU yet): against levers_k64.json's scan rows of one step per iteration
    bench --architectures lstm rnn --k 64 --precision float32 bfloat16 --kernel fused --no-peak \
        --json "$out/levers_fused.json"
    ;;
all)  # every architecture: the float32 baseline (gpu_throughput.yaml), the levers, hidden 256; bf16 parity
    bench --architectures gru antisymmetric lipschitz exponential unicornn --k 64 --no-peak \
        --json "$out/all_k64_float32.json"
    bench --k 512 --precision bfloat16 --unroll 8 --remat 1 --no-peak --json "$out/all_k512_bf16.json"
    bench --k 256 --hidden 256 --precision bfloat16 --unroll 8 --remat 1 --no-peak --json "$out/all_h256_bf16.json"
    python3 benchmarks/precision_parity.py --architectures lstm --json "$out/parity.json"
    ;;
study)  # a study slice end to end through run_ensemble.py: grid and asha in groups, sharing the GPU
    python3 benchmarks/gpu_study.py --out runs/gpu_study --architectures rnn gru antisymmetric unicornn \
        --learning-rates 1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 --k 18 --sims-per-gpu 4 \
        --samples 25600 --json "$out/study.json"
    ;;
*) echo "unknown stage $stage: levers, all or study" >&2; exit 2 ;;
esac
