#!/usr/bin/env bash
# explain occlusion options end to end on a random tiny model and a non-square image
# (a per-position --baseline too; see below):
# --occ-batch 1 and --occ-batch 7 give the same map (batched copies == one at a time);
# --occ-space pixels records the space, the fill colour and, per run, the painted box
# in model pixels and in original pixels (null for padding-only cells), with one run
# per cell; bad option values -> exit 2 and one error line.
set -euo pipefail
BIN=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "explain_occlusion.sh: $*" >&2; exit 1; }

"$BIN" make-model --preset tiny --type f32 --seed 5 -o "$TMP/m" > /dev/null 2>&1 || fail "make-model failed"
M=(-m "$TMP/m/tiny-f32.gguf" --mmproj "$TMP/m/mmproj-tiny-f16.gguf")
IMG="$SRC/assets/examples/wide.png"
Q="What color is the diamond?"
for b in 1 7; do
  "$BIN" explain occlusion -t 1 "${M[@]}" --image "$IMG" -p "$Q" --occ-batch $b -o "$TMP/b$b" > /dev/null 2> "$TMP/e.txt" \
    || fail "explain --occ-batch $b failed: $(cat "$TMP/e.txt")"
done
"$BIN" explain occlusion -t 1 "${M[@]}" --image "$IMG" -p "$Q" --occ-space pixels --occ-batch 5 -o "$TMP/px" \
  > "$TMP/px.txt" 2> "$TMP/e.txt" || fail "explain --occ-space pixels failed: $(cat "$TMP/e.txt")"
grep -q "^occlusion .*blocks of pixels" "$TMP/px.txt" || fail "no pixel-space line in: $(cat "$TMP/px.txt")"

/usr/bin/python3 - "$TMP" <<'PY' || fail "report checks failed"
import json, math, os, sys
d = sys.argv[1]
ok = True
def check(c, what):
    global ok
    if not c:
        print("FAIL:", what, file=sys.stderr); ok = False
occ = {k: json.load(open(os.path.join(d, k, "report.json")))["methods"]["occlusion"] for k in ("b1", "b7", "px")}
m1, m7 = occ["b1"]["map"], occ["b7"]["map"]
scale = max(max(abs(v) for v in m1), 1e-2)
check(max(abs(a - b) for a, b in zip(m1, m7)) <= 1e-4 * scale, "batch 1 and batch 7 maps agree")
check(occ["b1"]["batch"] == 1 and occ["b7"]["batch"] == 7 and occ["b7"]["batches"] == math.ceil(196 / 7), "batch counts")
check(occ["b1"]["space"] == "tokens" and not occ["b7"]["partial"], "token space, full sweep")
r = json.load(open(os.path.join(d, "px", "report.json")))
rows, cols = r["grid"]
px = r["methods"]["occlusion"]
check(px["space"] == "pixels" and len(px["fill_rgb"]) == 3, "pixel space and fill colour recorded")
check(len(px["map"]) == rows * cols and all(isinstance(v, (int, float)) for v in px["map"]), "finite map of rows*cols")
check(len(px["runs"]) == rows * cols, "one run per cell")
boxes = r["preprocess"]["cell_boxes"]
ps = r["preprocess"]["patch_size"]
for run in px["runs"]:
    r0, c0, r1, c1 = run["cells"]
    check(run["model_box"] == [c0 * ps, r0 * ps, c1 * ps, r1 * ps], "model box of cells %s" % run["cells"])
    check((run["original_box"] is None) == (boxes[r0 * cols + c0] is None), "original box null iff padding")
    if run["original_box"] is not None:
        check(run["original_box"] == boxes[r0 * cols + c0], "original box is the cell box")
sys.exit(0 if ok else 1)
PY

# A baseline with one row per grid position: the image's own tokens (what encode writes)
# make every occlusion a no-op, so the map is zero; a file with one row too few is refused
# in one line naming it.
"$BIN" encode --mmproj "$TMP/m/mmproj-tiny-f16.gguf" --image "$IMG" -o "$TMP/own.npy" --no-json > /dev/null \
  || fail "encode failed"
"$BIN" explain occlusion -t 1 "${M[@]}" --image "$IMG" -p "$Q" --baseline "$TMP/own.npy" -o "$TMP/own" > /dev/null \
  2> "$TMP/e.txt" || fail "explain --baseline (per position) failed: $(cat "$TMP/e.txt")"
/usr/bin/python3 - "$TMP" <<'PY' || fail "per-position baseline checks failed"
import json, os, struct, sys
d = sys.argv[1]
occ0 = json.load(open(os.path.join(d, "b1", "report.json")))["methods"]["occlusion"]
occ = json.load(open(os.path.join(d, "own", "report.json")))["methods"]["occlusion"]
worst, ref = max(abs(v) for v in occ["map"]), max(abs(v) for v in occ0["map"])
if not (ref > 1e-4 and worst <= 1e-3 * ref):
    sys.exit("own tokens as baseline: max |map| %g, mean-baseline map %g" % (worst, ref))
if "per position" not in occ["baseline"]:
    sys.exit("baseline not recorded as per position: %r" % occ["baseline"])
# the same file with its last row dropped (npy v1 header rewritten by hand)
raw = open(os.path.join(d, "own.npy"), "rb").read()
hl = struct.unpack("<H", raw[8:10])[0]
hdr = raw[10:10 + hl].decode("latin1")
shape = eval(hdr[hdr.index("'shape':") + 8:hdr.index(")") + 1])
new = hdr.replace(str(shape), str((shape[0] - 1, shape[1]))).rstrip()
pad = (64 - (10 + len(new) + 1) % 64) % 64
new = new + " " * pad + "\n"
body = raw[10 + hl:10 + hl + 4 * (shape[0] - 1) * shape[1]]
open(os.path.join(d, "short.npy"), "wb").write(raw[:8] + struct.pack("<H", len(new)) + new.encode("latin1") + body)
PY
if "$BIN" explain occlusion "${M[@]}" --image "$IMG" -p "$Q" --baseline "$TMP/short.npy" -o "$TMP/bad" 2> "$TMP/e.txt"; then
  fail "a baseline with one row too few was accepted"
fi
[ "$(wc -l < "$TMP/e.txt")" -eq 1 ] && grep -q "short.npy" "$TMP/e.txt" || fail "short baseline: $(cat "$TMP/e.txt")"

for bad in "--occ-space bogus" "--occ-batch 0" "--occ-batch 2x"; do
  # shellcheck disable=SC2086
  if "$BIN" explain occlusion "${M[@]}" --image "$IMG" -p "$Q" $bad -o "$TMP/bad" 2> "$TMP/e.txt"; then
    fail "accepted $bad"
  fi
  [ "$(wc -l < "$TMP/e.txt")" -eq 1 ] && grep -q -- "${bad%% *}" "$TMP/e.txt" || fail "$bad: $(cat "$TMP/e.txt")"
done
echo "explain_occlusion.sh: ok"
