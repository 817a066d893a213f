#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA device (about 5 minutes), from the repository root:
#   bash benchmarks/gpu.sh [--dry-run]
# 1. benchmarks/train_step.py for baseline and transformer: CPU (2 threads) as the yardstick,
#    then CUDA fp32, bf16 autocast, torch.compile fp32 and bf16 (jets/s, ratio to the
#    plain-PyTorch reference and to the CPU figure) at batch 1000; fp32 and bf16 at batch 5000;
# 2. the tiny config (config/tiny.yaml) prepared, then the baseline trained for 2 epochs with
#    accelerator gpu and with accelerator cpu (jets/s of each from metrics.json, and the ratio);
# 3. with two or more GPUs, the same training as a 2-device DDP run;
# 4. benchmarks/peers_gpu.py: the GN2-size model of hepsnake and of Salt, jets/s and MFU.
# Without a CUDA device it stops at once with one line and exit status 1.
# --dry-run: the same steps on the CPU, at tiny sizes, without a CUDA device (a test runs it, so
# that the check still works the day a GPU is lent): the "cuda" variants run on the CPU with
# torch.compile's eager backend, the "gpu" training with accelerator cpu, one epoch; no DDP step.
# Its figures measure nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--dry-run" ]; then
  echo "== --dry-run: every step on the CPU at tiny sizes; the figures measure nothing"
  n_gpu=1
  accelerator=cpu epochs=1 limit=3  # limit: a factor on the timeouts
  step=(--batch 50 --steps 1 --rounds 1 --cuda-device cpu --compile-backend eager)
  big=(--batch 100 --steps 1 --rounds 1 --cuda-device cpu)
elif [ $# -gt 0 ]; then
  echo "usage: bash benchmarks/gpu.sh [--dry-run]" >&2
  exit 2
else
  if ! python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    echo "gpu.sh: no CUDA device (torch.cuda.is_available() is False): nothing run" >&2
    exit 1
  fi
  n_gpu=$(python -c 'import torch; print(torch.cuda.device_count())')
  echo "== $n_gpu CUDA device(s): $(python -c 'import torch; print(torch.cuda.get_device_name())')"
  accelerator=gpu epochs=2 limit=1
  step=(--batch 1000 --steps 5 --rounds 2)
  big=(--batch 5000 --steps 10 --rounds 2)
fi

for model in baseline transformer; do
  echo "== train_step.py --model $model ${step[*]} (CPU: 2 threads)"
  timeout $((100 * limit)) python benchmarks/train_step.py --model "$model" --threads 2 \
    "${step[@]}" --cuda fp32 bf16 compile compile-bf16
  echo "== train_step.py --model $model ${big[*]} (GPU only)"
  timeout $((40 * limit)) python benchmarks/train_step.py --model "$model" --threads \
    "${big[@]}" --no-lightning --cuda fp32 bf16
done

scratch=$(mktemp -d -t hepsnake-gpu-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
repo=$PWD
cp -r config "$scratch"/
cd "$scratch"

# one tiny training per setting, each in its own results/ (prepared once, then copied)
train_tiny() {  # NAME ACCELERATOR DEVICES
  local name=$1
  cat >"config/gpu_$name.yaml" <<EOF
extends: config/tiny.yaml
models: [baseline]
training_overrides: {max_epochs: $epochs, batch_size: 500, accelerator: $2, devices: $3}
EOF
  if [ ! -d results_prepared ]; then
    timeout $((150 * limit)) snakemake prepare_norm -s "$repo/Snakefile" --cores all --quiet \
      --configfile "config/gpu_$name.yaml" >prepare.out 2>&1 || {
      echo "gpu.sh: preparing the tiny config failed; snakemake said:" >&2
      tail -20 prepare.out >&2
      exit 1
    }
    cp -a results results_prepared
  else
    rm -rf results && cp -a results_prepared results
  fi
  timeout $((120 * limit)) snakemake results/models/baseline/best.ckpt -s "$repo/Snakefile" \
    --cores all --quiet --configfile "config/gpu_$name.yaml" >"train_$name.out" 2>&1 || {
    echo "gpu.sh: the $name training failed; snakemake and the train log said:" >&2
    tail -10 "train_$name.out" results/logs/train/baseline.log >&2
    exit 1
  }
  python - "$name" <<'EOF'
import json, sys
epochs = json.load(open("results/models/baseline/metrics.json"))["epochs"]
rate = max(e["jets_per_s"] for e in epochs)
print(f"  tiny baseline, {sys.argv[1]:<10} {rate:>10,.0f} jets/s (best of {len(epochs)} epochs)")
open(f"rate_{sys.argv[1]}", "w").write(str(rate))
EOF
}

echo "== the tiny config, baseline, $epochs epoch(s) (hepsnake train through Snakemake)"
train_tiny cpu cpu 1
train_tiny gpu "$accelerator" 1
python -c "print(f'  gpu / cpu: {float(open(\"rate_gpu\").read()) / float(open(\"rate_cpu\").read()):.2f}x')"
if [ "$n_gpu" -ge 2 ]; then
  train_tiny ddp2 gpu 2
  python -c "print(f'  ddp2 / gpu: {float(open(\"rate_ddp2\").read()) / float(open(\"rate_gpu\").read()):.2f}x')"
else
  echo "  (one GPU: no 2-device DDP step)"
fi

# 4. the GN2-size model, hepsnake's and Salt's (Salt from benchmarks/_peers_env.py's venv, skipped
#    with one line where it is not built): fp32, bf16, compiled; jets/s and model FLOPs utilisation
peers_gpu=(python "$repo/benchmarks/peers_gpu.py")
if [ "${1:-}" = "--dry-run" ]; then peers_gpu+=(--dry-run); fi
echo "== GN2 size, hepsnake and Salt (benchmarks/peers_gpu.py ${peers_gpu[*]:2})"
timeout 400 "${peers_gpu[@]}"
