#!/usr/bin/env bash
# The project's own GPU-machine steps, run by `.gpu/run.sh extra|all` (see
# ../shared/tools/gpu-bundle) from the repo root, results under $OUT:
#   0. `ganlab devices`: the adapter, its subgroup sizes and cooperative-matrix shapes;
#   1. the train_step bench on the GPU, every model at batch 64 and 128 (with launch counters;
#      dcgan64 at 64x64 RGB, the PyTorch DCGAN example's setting);
#   2. 200 DCGAN training steps with .gpu/bin/ganlab, timed, with --profile counters;
#   3. the same models and batches in PyTorch on CUDA, interleaved with ganlab
#      (scripts/bench-vs-torch), for the ratio table in docs/PERF.md;
#   4. the conv bench on the DCGAN's layers at batch 64 and 128, every GPU kernel variant, with
#      the share of fp32 peak (GPU_PEAK_TFLOPS, default the H200's 67): the GEMM issue's
#      ">= 30% of peak forward, grad-weight >= 50% of forward" figures;
#   5. steps 4 and 1 (DCGAN, batch 64) again on the adapter's cooperative matrices
#      (GANLAB_MATRICES=on; off by default until these figures exist), where it offers them.
# Budget: about 7 minutes on an H200. Each step has its own 90 s limit, so one slow step
# cannot starve the others (and what it wrote before the limit is kept).
#
# Checked here on lavapipe with a tiny configuration (GPU_EXTRA_TINY=1: gan at batch 8, 5 steps,
# PyTorch on the CPU when it is importable, one conv layer at batch 8, step 5 on emulated
# fragments) by .ci/run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
bin=${GANLAB_BIN_DIR:-.gpu/bin}
bench="$bin/bench-bench-train_step"
conv="$bin/bench-bench-conv"
ganlab="$bin/ganlab"
rc=0

if [ -n "${GPU_EXTRA_TINY:-}" ]; then
  models=gan; batches=8; steps=5; reps=2; torch_device=cpu; limit=120
  conv_args=(--filter "dcgan-G conv3" --batch 8 --reps 1 --variant auto)
  matrices=emulate16; matrix_model=gan
else
  models=gan,dcgan,cgan,wgan,wgan-gp,dcgan64; batches=64,128; steps=200; reps=7; torch_device=cuda; limit=90
  conv_args=(--filter dcgan --batch 64,128 --reps 5 --peak-tflops "${GPU_PEAK_TFLOPS:-67}")
  matrices=on; matrix_model=dcgan
fi

echo "== the adapter and what kernels may use on it (subgroups, cooperative-matrix shapes)"
timeout 30 "$ganlab" devices 2>&1 | tee "$OUT/devices.txt" || rc=1

echo "== train_step bench on the GPU ($models, batch $batches)"
timeout "$limit" "$bench" --bench --model "$models" --batch "$batches" --device gpu --all \
  --reps "$reps" --json "$OUT/train_step_gpu.json" 2>&1 | tee "$OUT/train_step_gpu.txt" || rc=1

model=dcgan; [ -n "${GPU_EXTRA_TINY:-}" ] && model=gan
echo "== $steps $model steps with ganlab train"
start=$(date +%s.%N)
timeout "$limit" "$ganlab" train "$model" --device gpu --data-dir fixtures/mnist-10k --quiet \
  --steps "$steps" --sample-every "$steps" --checkpoint-every "$steps" --out "$OUT/run-$model" \
  --profile 2>&1 \
  | tail -n 20 | tee "$OUT/train_$model.txt" || rc=1
end=$(date +%s.%N)
python3 -c "print(f'{$steps} $model steps: {($end - $start):.1f} s wall, including start-up')" \
  | tee -a "$OUT/train_$model.txt"

echo "== PyTorch side by side ($torch_device)"
if python3 -c 'import torch' 2>/dev/null; then
  timeout "$limit" python3 scripts/bench-vs-torch --device "$torch_device" --models "$models" \
    --batches "$batches" --reps "$reps" --rounds 1 --bench "$bench --bench" \
    --json "$OUT/vs_torch.json" 2>&1 | tee "$OUT/vs_torch.txt" || rc=1
else
  echo "torch is not importable: skipped" | tee "$OUT/vs_torch.txt"
fi

echo "== conv kernels on the GPU (${conv_args[*]})"
timeout "$limit" "$conv" --bench --device gpu "${conv_args[@]}" 2>&1 \
  | tee "$OUT/conv_gpu.txt" || rc=1

echo "== on cooperative matrices (GANLAB_MATRICES=$matrices)"
# `devices` lists the adapters even where the context cannot open: the capabilities line says
# whether fragments are used.
GANLAB_MATRICES=$matrices timeout 30 "$ganlab" devices >"$OUT/matrices.txt" 2>&1
if grep -q "cooperative matrices .*(used: [^o]" "$OUT/matrices.txt"; then
  GANLAB_MATRICES=$matrices timeout "$limit" "$conv" --bench --device gpu "${conv_args[@]}" \
    --variant auto 2>&1 | tee -a "$OUT/matrices.txt" || rc=1
  GANLAB_MATRICES=$matrices timeout "$limit" "$bench" --bench --model "$matrix_model" \
    --batch "${batches%%,*}" --device gpu --all --reps "$reps" \
    --json "$OUT/train_step_matrices.json" 2>&1 | tee -a "$OUT/matrices.txt" || rc=1
else
  echo "no cooperative matrices here:" && cat "$OUT/matrices.txt"
fi
exit $rc
