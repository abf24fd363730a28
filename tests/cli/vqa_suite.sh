#!/usr/bin/env bash
# The committed suite assets/vqa: (1) it is exactly what its documented command
# generates (so the scene generator's output never drifts silently), and (2) the
# shipped model still reaches the accuracy recorded in assets/vqa/expected.json
# (tolerance 0.01), overall and per question type.
# Usage: vqa_suite.sh BIN SRCDIR
set -euo pipefail
BIN=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$BIN" toy generate --n 200 --seed 3 -o "$T/suite"
cmp "$SRC/assets/vqa/examples.jsonl" "$T/suite/examples.jsonl"
# Pixels, not PNG bytes: another zlib may compress the same image differently.
for d in images masks; do
    /usr/bin/python3 "$SRC/tests/cli/toy_png.py" same "$SRC/assets/vqa/$d" "$T/suite/$d"
done
echo "vqa_suite: assets/vqa matches 'toy generate --n 200 --seed 3'"

LM="$SRC/assets/model/llava-mech-toy-lm.gguf"
MP="$SRC/assets/model/llava-mech-toy-mmproj.gguf"
if [ ! -f "$SRC/assets/vqa/expected.json" ]; then
    echo "vqa_suite: assets/vqa/expected.json is missing (scripts/regen_model_goldens.sh records it)" >&2
    exit 1
fi
"$BIN" vqa "$SRC/assets/vqa/examples.jsonl" -m "$LM" --mmproj "$MP" -o "$T/out" \
    --expect "$SRC/assets/vqa/expected.json" --tolerance 0.01
echo "vqa_suite: ok"
