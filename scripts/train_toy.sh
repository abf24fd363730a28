#!/usr/bin/env bash
# Trains the shipped toy model (assets/model/llava-mech-toy-{lm,mmproj}.gguf) from
# scratch with the exact settings that produced it, or resumes an interrupted run.
# Checkpoints go to out-train/llava-mech-toy.ckpt every 50 steps; running this script
# again continues from there (bit-exactly for the same thread count). Logs to
# out-train/train.log. Usage: scripts/train_toy.sh [BIN] (default build/llava-mech);
# OUT=DIR writes the two GGUF files to DIR instead of assets/model.
#
# The training aids (toy/train.c says why): --aux-lens makes each object patch predict
# its colour, shape and side words through the output head; for the first
# --lens-only steps that is the only loss (the tower learns shapes, the LM is not
# run); then --keep-ramp hides background image tokens from the LM and fades them in,
# and --image-grad scales the answer loss's gradient into the projector and tower.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/llava-mech}"
OUT="${OUT:-assets/model}"
[ -x "$BIN" ] || bash scripts/setup.sh
mkdir -p out-train "$OUT"
CKPT=out-train/llava-mech-toy.ckpt
ARGS=(--batch 16 --lr 2e-3 --lr-min 1e-4 --warmup 100 --wd 0.05 --vision-lr 1
  --lens-only 2000 --keep-ramp 4000 --aux-lens 1 --image-grad 0.2 --seed 1234 --threads 2 --checkpoint "$CKPT" --ckpt-every 50
  --eval-every 250 --val-n 40 --type f32 --out-dir "$OUT" --test-n 400)
phase() { # STEPS
  local resume=()
  [ -f "$CKPT" ] && resume=(--resume)
  echo "== $(date -u +%FT%TZ) $BIN toy train --steps $1 ${ARGS[*]} ${resume[*]}" >>out-train/train.log
  "$BIN" toy train --steps "$1" "${ARGS[@]}" "${resume[@]}" 2>&1 | tee -a out-train/train.log
}

# Two phases, as the shipped model was made: 10000 steps with the cosine over 10000,
# then a resume to 12000, which recomputes the cosine over 12000 steps (the learning
# rate steps up from 1e-4 to 2.3e-4 and decays to 1e-4 again). A phase whose
# checkpoint already reached its step count only re-exports.
phase 10000
phase 12000
