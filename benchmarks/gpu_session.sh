#!/usr/bin/env bash
# The GPU measurements behind docs/performance.md, in stages meant to fit one device call each
# (10 minutes on one H200). Run from the repository root, with keras, libensemble and pydantic
# carried as wheels in .whl/ (the GPU image has JAX but neither; pytest's for the fused stage's test):
#   bash benchmarks/gpu_session.sh fused|unicornn|tune|parity|levers|profile|rates|hidden256|study|fill|probe|rate
# Each stage writes its JSON under $OUT (or runs/gpu) after every measurement.
set -uo pipefail
stage=${1:?fused, unicornn, tune, parity, levers, profile, rates, hidden256, study, fill, probe or rate}
out=${OUT:-runs/gpu}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# Each measurement is bounded (STEP_TIMEOUT seconds, default 300), so one that hangs leaves the
# rest of the lease to the next ones; every JSON is written as its results come.
limit() { timeout "${STEP_TIMEOUT:-300}" "$@" || echo "exit $? from: $*" >&2; }
bench() { limit python3 benchmarks/gpu_ensemble.py --epochs 2 --batches 8 "$@"; }

case $stage in
fused)  # the fused Pallas kernel of the dynamical cells (antisymmetric, lipschitz, exponential): rates and parity
    bench --architectures antisymmetric lipschitz exponential --k 64 256 --precision float32 bfloat16 --kernel fused \
        --no-peak --json "$out/dynamical_fused.json"
    limit python3 benchmarks/precision_parity.py --architectures antisymmetric lipschitz exponential \
        --variants float32:fused bfloat16:fused --json "$out/dynamical_parity.json"
    # every fused cell's states and gradients against the scan's, Triton kernels, float32 products exact
    JAX_DEFAULT_MATMUL_PRECISION=highest limit python3 -m pytest -o addopts="" -q -p no:cacheprovider \
        tests/unit/test_fused.py -k states_and_gradients 2>&1 | tail -3 | tee "$out/test_fused.log"
    ;;
unicornn)  # the UnICORNN's cell in the fused kernel (no recurrent matrix): rates (its scan's are in rates), parity
    bench --architectures unicornn --k 64 256 --kernel fused --precision float32 bfloat16 --no-peak \
        --json "$out/unicornn_fused_h128.json"
    bench --architectures unicornn --k 64 --hidden 256 --kernel scan fused --precision bfloat16 --no-peak \
        --json "$out/unicornn_fused_h256.json"
    limit python3 benchmarks/precision_parity.py --architectures unicornn --variants float32:fused bfloat16:fused \
        --json "$out/unicornn_parity.json"
    ;;
tune)  # the fused kernel's launch: batch rows per program and warps (BLOCK:WARPS, 0: Triton's default 4).
    # 64 batches an epoch: at 8, an epoch of the fused rnn (0.5 s at K=256) is shorter than the host's
    # recording of the epoch before (256 members' weights into their models), which then sets the pace
    bench --architectures rnn --k 256 --kernel fused --precision bfloat16 --fused-launch 16:0 32:4 32:8 64:8 \
        --batches 64 --no-peak --json "$out/tune_rnn.json"
    bench --architectures unicornn antisymmetric --k 64 --kernel fused --precision bfloat16 \
        --fused-launch 16:0 32:4 32:8 64:8 --batches 64 --no-peak --json "$out/tune_dynamical.json"
    ;;
parity)  # bf16 and the fused kernel against the float32 scan, 128 seeds: the pairs 3 seeds could not decide
    # (rnn digits fused, lstm adding bf16) and the gru's bf16 scan
    limit python3 benchmarks/precision_parity.py --architectures rnn --datasets digits \
        --variants float32:fused bfloat16:fused bfloat16:scan --json "$out/parity_rnn.json"
    limit python3 benchmarks/precision_parity.py --architectures lstm --datasets adding \
        --variants bfloat16:scan bfloat16:fused float32:fused --json "$out/parity_lstm.json"
    limit python3 benchmarks/precision_parity.py --architectures gru --variants bfloat16:scan \
        --json "$out/parity_gru.json"
    ;;
levers)  # which lever pays, on the cheapest and a gated cell: precision, unrolling, K, remat
    bench --architectures lstm rnn --k 64 --precision float32 bfloat16 --unroll 1 8 --json "$out/levers_k64.json"
    bench --architectures lstm rnn --k 256 --precision float32 bfloat16 --unroll 8 --no-peak \
        --json "$out/levers_k256.json"
    bench --architectures lstm --k 512 --precision bfloat16 --unroll 8 --remat 1 --no-peak \
        --json "$out/levers_remat.json"
    ;;
profile)  # where a step's time goes: kernels per time step against K, and XLA's loop command buffers
    limit python3 benchmarks/scan_profile.py --architectures rnn lstm --k 1 64 256 --json "$out/profile.json"
    XLA_FLAGS=--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL \
        limit python3 benchmarks/scan_profile.py --architectures rnn lstm --k 64 --json "$out/profile_while_graphs.json"
    ;;
rates)  # every architecture at the best lever setting, K from 64 to 512 (members_per_program says how many fit)
    bench --k 64 256 512 --precision bfloat16 --unroll 8 --no-peak --json "$out/all_bf16_unroll8.json"
    ;;
hidden256)  # hidden 256 for every architecture
    bench --k 64 --hidden 256 --precision float32 bfloat16 --unroll 8 --no-peak --json "$out/all_h256.json"
    ;;
study)  # a study slice end to end through run_ensemble.py: the grid, then asha two ways, in groups sharing the
    # GPU. The study's 10 replicates (the grid multiplies them, asha trains them for its finalists alone) and
    # its learning rates' range, 1e-5 to 1e-2, in 10 steps: a cell's configurations are many against the
    # finalist's replicates, as in the study's 2 x 4 per cell x its 80 cells. gru and lstm on the adding
    # problem at 784 steps: the gru learns it in 9 epochs at 1e-2 alone (0.02 learned too, but diverged in
    # 1 of 10 replicates in 3 runs of 4, which decided the cell by chance), the lstm stays near chance,
    # graded by how near each rate gets. K=20, 5 sims: each cell's 100 trainings are 5 groups, 10 in
    # all, two full rounds (19 lstm members fit a fifth of the GPU at 1031 MiB each: each lstm group
    # trained 19, then 1 alone, before groups split evenly, now 10 and 10). asha two ways,
    # each finalist replicated alongside its chain, a configuration that diverges in any training out
    # (its place goes to the next): a 3-epoch grace period then the best ninth to the full budget
    # (12 epoch-times, 2 programs); rungs 1, 3, 9 (12, 3 programs). STEP_TIMEOUT=590
    limit python3 benchmarks/gpu_study.py --out runs/gpu_study --architectures gru lstm \
        --learning-rates 1e-5 2e-5 5e-5 1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 --k 20 --sims-per-gpu 5 \
        --replicates 10 --samples 5120 --json "$out/study.json" \
        --asha asha_grace_eta9 generator.eta=9 generator.min_budget=3 generator.replicate_finalists=all \
        --asha asha_rungs_1_3_9 generator.eta=3 generator.min_budget=1 generator.replicate_finalists=all
    ;;
fill)  # fill the GPU: one large group per GPU against several grouped sims sharing it, the same grid
    for shape in "90 1" "45 2" "23 4"; do
        set -- $shape
        limit python3 benchmarks/gpu_study.py --out "runs/fill_k$1" --runs grid --architectures rnn gru \
            --learning-rates 1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 --replicates 10 --epochs 3 \
            --samples 5120 --k "$1" --sims-per-gpu "$2" --json "$out/fill_k$1_sims$2.json"
    done
    ;;
probe)  # which offline task of 784 steps grades the learning rates with a margin (the adding problem leaves
    # the lstm at chance and the gru's best two tied): a group's word problem, running labels, one replicate;
    # then the first again with XLA's deterministic ops (does a seed replay, and at what cost)
    for group in "cyclic 2" "cyclic 5" "symmetric 3" "dihedral 4"; do
        set -- $group
        limit python3 benchmarks/gpu_study.py --out "runs/probe_$1$2" --runs grid --no-microbenchmark --task group \
            --task-option group "$1" --task-option degree "$2" --architectures gru lstm \
            --learning-rates 1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 --replicates 1 --samples 5120 --k 9 \
            --sims-per-gpu 2 --json "$out/probe_$1$2.json"
    done
    XLA_FLAGS=--xla_gpu_deterministic_ops=true limit python3 benchmarks/gpu_study.py --out runs/probe_deterministic \
        --runs grid --no-microbenchmark --task group --task-option group cyclic --task-option degree 2 \
        --architectures gru lstm --learning-rates 1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 --replicates 1 \
        --samples 5120 --k 9 --sims-per-gpu 2 --json "$out/probe_cyclic2_deterministic.json"
    ;;
rate)  # the end-to-end rate at the study's epoch length (60,000 samples: 469 batches, against the study
    # stage's 40), where a group's fixed costs (starting: its task, models and programs' compile, about 30 s
    # with the GPU idle, as every sim starts at once) weigh against 375 s of training in 3 epochs (2 gave
    # 84%: 2 x 127 s against the same start; a study's 25-50 epochs: an hour or more): gru x 9 learning
    # rates x 10 replicates, K=23 (4 groups: one round of the 4 sims). STEP_TIMEOUT=590
    limit python3 benchmarks/gpu_study.py --out runs/gpu_rate --runs grid --architectures gru \
        --learning-rates 1e-4 2e-4 5e-4 1e-3 2e-3 5e-3 1e-2 2e-2 5e-2 --k 23 --sims-per-gpu 4 \
        --replicates 10 --samples 60000 --epochs 3 --json "$out/rate_study_epochs.json"
    ;;
*) echo "unknown stage $stage: fused, unicornn, tune, parity, levers, profile, rates, hidden256, study, fill," \
        "probe or rate" >&2
   exit 2 ;;
esac
