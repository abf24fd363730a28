#!/usr/bin/env bash
# The preprocessing pipeline is recorded in every output, and the same geometry
# everywhere: encode's stdout and JSON sidecar, ask --json, and explain's report.json
# (pipeline, transform, one box per grid cell) for pad and crop on a non-square image;
# explain's boxes are the cells of encode's transform. An mmproj whose projector width
# does not match the LM is one error line naming both files, exit 1, in ask and explain.
set -euo pipefail
BIN=$1
SRC=$2
G="$SRC/tests/golden/vision"
IMG="$G/photo_160x120.png"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "encode_records.sh: $*" >&2; exit 1; }
PY=/usr/bin/python3
MP="$SRC/assets/model/llava-mech-toy-mmproj.gguf"
LM="$SRC/assets/model/llava-mech-toy-lm.gguf"
[ -f "$MP" ] && [ -f "$LM" ] || { echo "encode_records.sh: no shipped model, skipped"; exit 0; }
Q="What color is the circle?"

for pipe in pad crop; do
  "$BIN" encode --mmproj "$MP" --image "$IMG" --pipeline $pipe -t 2 -o "$TMP/$pipe.npy" > "$TMP/enc_$pipe.txt" \
    || fail "encode $pipe"
  grep -q "pipeline $pipe -> 224x224" "$TMP/enc_$pipe.txt" || fail "encode stdout lacks the pipeline ($pipe)"
  "$BIN" ask -m "$LM" --mmproj "$MP" --image "$IMG" -p "$Q" --pipeline $pipe -n 2 -t 2 --json > "$TMP/ask_$pipe.json" \
    || fail "ask $pipe"
  "$BIN" explain attention -m "$LM" --mmproj "$MP" --image "$IMG" -p "$Q" --pipeline $pipe -t 2 -o "$TMP/ex_$pipe" \
    > /dev/null || fail "explain $pipe"
  $PY - "$TMP/$pipe.json" "$TMP/ask_$pipe.json" "$TMP/ex_$pipe/report.json" "$pipe" <<'PYEOF' || fail "records differ ($pipe)"
import json, sys
enc, ask, rep = (json.load(open(p)) for p in sys.argv[1:4])
pipe = sys.argv[4]
assert enc["pipeline"] == pipe and ask["pipeline"] == pipe, (enc["pipeline"], ask["pipeline"])
pp = rep["preprocess"]
assert pp["pipeline"] == pipe, pp["pipeline"]
t, e = pp["transform"], enc["to_model"]
for k in ("sx", "sy", "ox", "oy"):
    assert abs(t[k] - e[k]) < 1e-5 * max(1, abs(e[k])), (k, t[k], e[k])
g, p = enc["grid"], enc["patch_size"]
assert rep["grid"] == [g, g] and pp["patch_size"] == p and len(pp["cell_boxes"]) == g * g
W, H = enc["image_width"], enc["image_height"]
n_vis = 0
for i, box in enumerate(pp["cell_boxes"]):
    r, c = divmod(i, g)
    x0, x1 = (c * p - e["ox"]) / e["sx"], ((c + 1) * p - e["ox"]) / e["sx"]
    y0, y1 = (r * p - e["oy"]) / e["sy"], ((r + 1) * p - e["oy"]) / e["sy"]
    want = [max(0, x0), max(0, y0), min(W, x1), min(H, y1)]
    if want[2] <= want[0] or want[3] <= want[1]:
        assert box is None, (i, box)
        continue
    n_vis += 1
    assert all(abs(a - b) < 1e-3 for a, b in zip(box, want)), (i, box, want)
# 160x120 landscape: pad leaves rows of padding-only cells; crop shows every cell
assert (n_vis < g * g) if pipe == "pad" else (n_vis == g * g), n_vis
PYEOF
done

# projector width != LM width: one line naming both files, exit 1, nothing else on stdout
"$BIN" make-model --preset tiny --type f32 -o "$TMP" > /dev/null || fail "make-model"
for cmd in ask explain; do
  args=("$cmd")
  [ $cmd = explain ] && args+=(attention -o "$TMP/ex_bad")
  set +e
  "$BIN" "${args[@]}" -m "$TMP/tiny-f32.gguf" --mmproj "$G/tiny_f32.gguf" --image "$IMG" -p "$Q" \
    > "$TMP/bad.out" 2> "$TMP/bad.err"
  rc=$?
  set -e
  [ $rc -eq 1 ] || fail "$cmd with a 40-wide projector and a 64-wide LM: exit $rc"
  [ "$(wc -l < "$TMP/bad.err")" -eq 1 ] || fail "$cmd: not one error line: $(cat "$TMP/bad.err")"
  grep -q "^llava-mech $cmd: .*tiny_f32.gguf: projector outputs 40-wide image tokens but .*tiny-f32.gguf embeds tokens 64 wide" \
    "$TMP/bad.err" || fail "$cmd: message: $(cat "$TMP/bad.err")"
  [ ! -s "$TMP/bad.out" ] || fail "$cmd: printed to stdout: $(cat "$TMP/bad.out")"
done
echo "encode_records.sh: ok"
