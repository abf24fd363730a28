#!/usr/bin/env bash
# Regenerates every vision golden: test images, the three random tiny mmproj fixtures
# (written by our C GGUF writer), the PIL resampling goldens and the PyTorch reference
# tensors. Usage: tests/golden/vision/regen.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${1:-build}
G=tests/golden/vision
PY=/usr/bin/python3
cmake --build "$BUILD" --target test_vision >/dev/null
$PY tests/reference/vision_images.py $G
"$BUILD"/tests/test_vision --write-fixtures $G
for pipe in pad crop llamacpp; do
  $PY tests/reference/vision_ref.py --resample $G/photo_160x120.png $G/photo_${pipe}224.png 224 $pipe
  $PY tests/reference/vision_ref.py --resample $G/small_45x31.png $G/small_${pipe}224.png 224 $pipe
  $PY tests/reference/vision_ref.py --resample $G/strip_600x9.png $G/strip_600x9_${pipe}224.png 224 $pipe
  $PY tests/reference/vision_ref.py --resample $G/strip_7x300.png $G/strip_7x300_${pipe}224.png 224 $pipe
done
$PY tests/reference/vision_ref.py $G/tiny_f32.gguf $G/small_45x31.png $G/f32_pad --pipeline pad
$PY tests/reference/vision_ref.py $G/tiny_f32.gguf $G/small_45x31.png $G/f32_crop --pipeline crop
$PY tests/reference/vision_ref.py $G/tiny_f16.gguf $G/portrait_30x41.png $G/f16_pad --pipeline pad
$PY tests/reference/vision_ref.py $G/tiny_f16.gguf $G/portrait_30x41.png $G/f16_crop --pipeline crop
$PY tests/reference/vision_ref.py $G/tiny_odd_f32.gguf $G/small_45x31.png $G/odd_pad --pipeline pad
$PY tests/reference/vision_ref.py $G/tiny_odd_f32.gguf $G/photo_160x120.png $G/odd_crop --pipeline crop
if [ -f assets/model/llava-mech-toy-mmproj.gguf ]; then
  $PY tests/reference/vision_ref.py assets/model/llava-mech-toy-mmproj.gguf $G/photo_160x120.png $G/shipped_pad --pipeline pad
  $PY tests/reference/vision_ref.py assets/model/llava-mech-toy-mmproj.gguf $G/photo_160x120.png $G/shipped_crop --pipeline crop
fi
