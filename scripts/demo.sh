#!/usr/bin/env bash
# The main job: set up, build, then answer a question about a shipped example image
# with the shipped toy model and explain the answer with the default methods.
# Writes out/demo/: report.json, overlay PNGs, charts, .npy arrays.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${1:-out/demo}
./build/llava-mech explain all --image assets/examples/shapes.png \
  -p "What color is the circle?" --bbox 98,3,160,65 -o "$OUT"
echo "open $OUT/occlusion_overlay.png (and the other *_overlay.png, *_chart.png); numbers in $OUT/report.json"
