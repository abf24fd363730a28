#!/usr/bin/env bash
# Regenerates every golden that depends on the shipped toy model, after
# assets/model/ changes: the vision tower's reference tensors on a photo, the
# end-to-end image -> answer reference (HF equations in float64, PyTorch), the
# model's checksums, and the committed VQA suite's recorded accuracy.
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
"$BUILD/llava-mech" vqa assets/vqa/examples.jsonl -m "$LM" --mmproj "$MP" -o "$T/vqa"
cp "$T/vqa/summary.json" assets/vqa/expected.json
echo "regenerated: tests/golden/vision/shipped_pad_*, tests/golden/lm/toy.*, assets/vqa/expected.json"
