#!/usr/bin/env bash
# encode: tokens and pixels match the PyTorch/PIL goldens for both pipelines, the JSON
# sidecar records the preprocessing, make-model's mmproj encodes, and bad inputs give
# one error line naming the file with a non-zero exit.
set -euo pipefail
BIN=$1
SRC=$2
G="$SRC/tests/golden/vision"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "encode.sh: $*" >&2; exit 1; }
PY=/usr/bin/python3

for pipe in pad crop; do
  "$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$G/small_45x31.png" --pipeline $pipe -t 2 \
    -o "$TMP/$pipe.npy" --pixels "$TMP/${pipe}_pix.npy" > "$TMP/$pipe.txt" || fail "encode $pipe failed"
  grep -q "tokens   16 x 40 float32" "$TMP/$pipe.txt" || fail "no shape line ($pipe)"
  grep -q "pipeline $pipe -> 28x28" "$TMP/$pipe.txt" || fail "no pipeline line ($pipe)"
  grep -Eq "^time +preprocess [0-9.]+ ms, vision [0-9.]+ ms" "$TMP/$pipe.txt" || fail "no timing line ($pipe)"
  $PY - "$TMP/$pipe.npy" "$G/f32_${pipe}_tokens.npy" "$TMP/${pipe}_pix.npy" "$G/f32_${pipe}_pixels.npy" \
      "$TMP/$pipe.json" "$pipe" <<'PYEOF' || fail "encode $pipe: output differs from golden"
import json, sys
import numpy as np
tok, gold, pix, gpix, js, pipe = sys.argv[1:7]
a, b = np.load(tok), np.load(gold)
assert a.shape == b.shape == (16, 40), (a.shape, b.shape)
assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), np.abs(a - b).max()
p, q = np.load(pix), np.load(gpix)
assert p.shape == (3, 28, 28) and np.abs(p - q).max() < 1e-5
j = json.load(open(js))
assert j["pipeline"] == pipe and j["image_width"] == 45 and j["image_height"] == 31, j
assert j["grid"] == 4 and j["n_tokens"] == 16 and j["d_out"] == 40 and j["blocks_run"] == 3
if pipe == "pad":
    assert j["pad_rgb"] == [122, 116, 104] and j["to_model"]["oy"] > 0
PYEOF
done

# --dump writes hook points as .npy: the attention patterns match the reference's
mkdir -p "$TMP/dump"
"$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$G/small_45x31.png" -o "$TMP/t.npy" --dump 'v.blk.*.attn.pattern' \
  "$TMP/dump" > "$TMP/dump.txt" || fail "encode --dump failed"
grep -q "dumped   3 activation(s)" "$TMP/dump.txt" || fail "dump count: $(cat "$TMP/dump.txt")"
$PY - "$TMP/dump" "$G/f32_pad_att.npy" <<'PYEOF' || fail "dumped attention differs from golden"
import sys
import numpy as np
d, gold = sys.argv[1:3]
g = np.load(gold)
for l in range(3):
    a = np.load(f"{d}/v.blk.{l}.attn.pattern.npy")
    assert a.shape == g[l].shape == (4, 17, 17) and np.abs(a - g[l]).max() < 1e-5
PYEOF

# llama.cpp's letterbox pipeline is recorded as such
"$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$G/small_45x31.png" --pipeline llamacpp -o "$TMP/l.npy" > /dev/null \
  || fail "encode llamacpp failed"
grep -q '"pipeline":.*"llamacpp"' "$TMP/l.json" && grep -q '"resample":.*"llama.cpp-bicubic"' "$TMP/l.json" \
  || fail "llamacpp sidecar: $(cat "$TMP/l.json")"

# default pipeline is pad
"$BIN" encode --mmproj "$G/tiny_f16.gguf" --image "$G/portrait_30x41.png" -o "$TMP/d.npy" --no-json > "$TMP/d.txt" \
  || fail "default encode failed"
grep -q "pipeline pad" "$TMP/d.txt" || fail "default pipeline is not pad"
[ ! -e "$TMP/d.json" ] || fail "--no-json wrote a sidecar"
grep -q "2/3 blocks run" "$TMP/d.txt" || fail "feature_layer rule not applied"

# an mmproj written by make-model (the gguf helper's writer) encodes
if "$BIN" make-model --preset tiny --type f16 -o "$TMP" > /dev/null 2>&1; then
  "$BIN" encode --mmproj "$TMP/mmproj-tiny-f16.gguf" --image "$G/photo_160x120.png" -o "$TMP/mk.npy" > "$TMP/mk.txt" \
    || fail "encode of make-model mmproj failed"
  "$BIN" encode --mmproj "$TMP/tiny-f16.gguf" --image "$G/photo_160x120.png" -o "$TMP/x.npy" 2> "$TMP/e.txt" \
    && fail "an LM file was accepted as mmproj"
  grep -q "llava-mech encode: .*tiny-f16.gguf.*architecture" "$TMP/e.txt" || fail "LM-as-mmproj message: $(cat "$TMP/e.txt")"
fi

# errors: one line naming the file, non-zero exit
set +e
"$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$TMP/missing.png" -o "$TMP/x.npy" 2> "$TMP/e1.txt"; rc1=$?
echo "not an image" > "$TMP/notes.png"
"$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$TMP/notes.png" -o "$TMP/x.npy" 2> "$TMP/e2.txt"; rc2=$?
"$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$G/photo_160x120.png" --pipeline squash -o "$TMP/x.npy" 2> /dev/null; rc3=$?
"$BIN" encode --mmproj "$G/tiny_f32.gguf" --image "$G/photo_160x120.png" --max-side 100 -o "$TMP/x.npy" 2> "$TMP/e4.txt"; rc4=$?
"$BIN" encode --image "$G/photo_160x120.png" -o "$TMP/x.npy" 2> /dev/null; rc5=$?
set -e
[ $rc1 -eq 1 ] && grep -q "^llava-mech encode: .*missing.png" "$TMP/e1.txt" || fail "missing image: rc $rc1 $(cat "$TMP/e1.txt")"
[ $rc2 -eq 1 ] && grep -q "^llava-mech encode: .*notes.png: not a readable image" "$TMP/e2.txt" || fail "not an image: $(cat "$TMP/e2.txt")"
[ $rc3 -eq 2 ] || fail "bad pipeline accepted"
[ $rc4 -eq 1 ] && grep -q "160x120, larger than the limit 100x100" "$TMP/e4.txt" || fail "size limit: $(cat "$TMP/e4.txt")"
[ $rc5 -eq 2 ] || fail "missing --mmproj accepted"
[ "$(wc -l < "$TMP/e2.txt")" -eq 1 ] || fail "error is not one line"
echo "encode.sh: ok"
