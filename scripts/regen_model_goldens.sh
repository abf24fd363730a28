#!/usr/bin/env bash
# Regenerates every golden that depends on the shipped toy model, after
# assets/model/ changes: the vision tower's reference tensors on a photo, the
# end-to-end image -> answer reference (HF equations in float64, PyTorch), the
# model's checksums, the occlusion baseline beside the LM (mean image token), and the
# committed VQA suite's recorded accuracy.
# Usage: scripts/regen_model_goldens.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
LM=assets/model/llava-mech-toy-lm.gguf
MP=assets/model/llava-mech-toy-mmproj.gguf
cmake --build "$BUILD" -j "$(nproc)" --target llava-mech >/dev/null
$PY tests/reference/vision_ref.py "$MP" tests/golden/vision/photo_160x120.png tests/golden/vision/shipped_pad \
  --pipeline pad
$PY tests/reference/lm_llava_ref.py "$LM" "$MP" assets/vqa/images/000000.png tests/golden/lm/toy.ids.npy \
  tests/golden/lm/toy --n-greedy 4 --question "What color is the circle?" --bin "$BUILD/llava-mech"
sha256sum "$LM" "$MP" > tests/golden/lm/toy.sha256.txt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The occlusion baseline 'auto' uses: the mean image token at each grid position over 100
# training-split scenes (196 x 128: the vision tower adds position embeddings, so one
# vector averaged over all positions is a token no position ever sees).
"$BUILD/llava-mech" toy generate --n 100 --seed 1 --noise-half -o "$T/train100" >/dev/null
for img in "$T"/train100/images/*.png; do
  "$BUILD/llava-mech" encode --mmproj "$MP" --image "$img" -o "$T/$(basename "$img" .png).npy" --no-json >/dev/null
done
$PY -c 'import glob, sys, numpy as np
x = np.stack([np.load(f) for f in sorted(glob.glob(sys.argv[1] + "/0*.npy"))])
np.save(sys.argv[2], x.mean(0).astype(np.float32))' "$T" "${LM%.gguf}.mean-embd.npy"
"$BUILD/llava-mech" vqa assets/vqa/examples.jsonl -m "$LM" --mmproj "$MP" -o "$T/vqa"
cp "$T/vqa/summary.json" assets/vqa/expected.json
echo "regenerated: tests/golden/vision/shipped_pad_*, tests/golden/lm/toy.*, ${LM%.gguf}.mean-embd.npy, assets/vqa/expected.json"
