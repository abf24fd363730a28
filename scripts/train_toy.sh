#!/usr/bin/env bash
# Trains the shipped toy model (assets/model/llava-mech-toy-{lm,mmproj}.gguf) from
# scratch with the exact settings that produced it, or resumes an interrupted run:
# checkpoints go to out-train/llava-mech-toy.ckpt every 50 steps and a second run of
# this script continues from there (bit-exactly, same thread count). Logs to
# out-train/train.log. Usage: scripts/train_toy.sh [BIN] (default build/llava-mech).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/llava-mech}"
[ -x "$BIN" ] || bash scripts/setup.sh
mkdir -p out-train assets/model
CKPT=out-train/llava-mech-toy.ckpt
RESUME=()
[ -f "$CKPT" ] && RESUME=(--resume)
echo "== $(date -u +%FT%TZ) $BIN toy train ${RESUME[*]}" >>out-train/train.log
"$BIN" toy train --steps 4000 --batch 16 --lr 2e-3 --lr-min 1e-4 --warmup 100 --wd 0.05 --vision-lr 0.3 --seed 1234 \
  --threads 2 --checkpoint "$CKPT" --ckpt-every 50 --eval-every 100 --val-n 40 \
  --out-dir assets/model --type f32 --test-n 400 "${RESUME[@]}" 2>&1 | tee -a out-train/train.log
