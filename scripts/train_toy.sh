#!/usr/bin/env bash
# Trains the shipped toy model (assets/model/llava-mech-toy-{lm,mmproj}.gguf) from
# scratch with the exact settings that produced it, or resumes an interrupted run.
# Checkpoints go to out-train/llava-mech-toy.ckpt every 50 steps; running this script
# again continues from there (bit-exactly for the same thread count). Logs to
# out-train/train.log. Usage: scripts/train_toy.sh [BIN] (default build/llava-mech).
#
# Two phases, as the shipped model was made: phase 1 runs 4000 steps with a cosine
# schedule over 4000 steps; phase 2 resumes it with --steps 9000, so the cosine is
# recomputed over 9000 steps (the learning rate restarts at ~1.2e-3 and decays to
# 1e-4). A phase whose checkpoint already reached its step count only re-exports.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/llava-mech}"
[ -x "$BIN" ] || bash scripts/setup.sh
mkdir -p out-train assets/model
CKPT=out-train/llava-mech-toy.ckpt
COMMON=(--batch 16 --lr 2e-3 --lr-min 1e-4 --warmup 100 --wd 0.05 --vision-lr 0.3 --seed 1234
  --threads 2 --checkpoint "$CKPT" --ckpt-every 50 --eval-every 100 --val-n 40 --type f32)

phase() { # STEPS OUT_DIR TEST_N
  local resume=()
  [ -f "$CKPT" ] && resume=(--resume)
  echo "== $(date -u +%FT%TZ) $BIN toy train --steps $1 ${resume[*]}" >>out-train/train.log
  "$BIN" toy train --steps "$1" "${COMMON[@]}" --out-dir "$2" --test-n "$3" "${resume[@]}" 2>&1 |
    tee -a out-train/train.log
}

phase 4000 out-train/phase1-model 0
phase 9000 assets/model 2000
