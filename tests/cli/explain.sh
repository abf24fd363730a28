#!/usr/bin/env bash
# explain: every method on a random tiny model and a non-square toy image writes a
# report.json with the documented top-level fields, a map of rows*cols numbers per
# method, cell boxes for the pad geometry, and valid PNG figures; bad input -> one
# error line naming the problem and a non-zero exit.
set -euo pipefail
BIN=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "explain.sh: $*" >&2; exit 1; }

"$BIN" make-model --preset tiny --type f32 --seed 3 -o "$TMP/m" > /dev/null 2>&1 || fail "make-model failed"
LM="$TMP/m/tiny-f32.gguf"
MP="$TMP/m/mmproj-tiny-f16.gguf"
"$BIN" explain all -t 1 -m "$LM" --mmproj "$MP" --image "$SRC/assets/examples/wide.png" \
  -p "What color is the diamond?" --bbox 200,50,260,110 -o "$TMP/out" > "$TMP/stdout.txt" 2> "$TMP/stderr.txt" \
  || fail "explain failed: $(cat "$TMP/stderr.txt")"
grep -q "^report: $TMP/out/report.json" "$TMP/stdout.txt" || fail "no report line in: $(cat "$TMP/stdout.txt")"

/usr/bin/python3 - "$TMP/out" <<'PY' || fail "report checks failed"
import json, os, sys
d = sys.argv[1]
r = json.load(open(os.path.join(d, "report.json")))
ok = True
def check(c, what):
    global ok
    if not c:
        print("FAIL:", what, file=sys.stderr); ok = False
for k in ("question", "answer", "target", "image_span", "grid", "preprocess", "methods"):
    check(k in r, "top-level key " + k)
rows, cols = r["grid"]
s, e = r["image_span"]
check(e - s == rows * cols, "image span length == rows*cols")
check(r["target"]["position"] > e - 1, "T after the image")
check(isinstance(r["target"]["id"], int) and "word" in r["target"], "target id and word")
pp = r["preprocess"]
check(pp["pipeline"] == "pad", "default pipeline pad")
boxes = pp["cell_boxes"]
check(len(boxes) == rows * cols, "one box per cell")
# 320x240 padded to 320x320: the top and bottom rows of cells show only padding
check(boxes[0] is None and boxes[-1] is None, "padding-only cells are null")
mid = boxes[(rows // 2) * cols + cols // 2]
check(mid is not None and 0 <= mid[0] < mid[2] <= 320 and 0 <= mid[1] < mid[3] <= 240, "middle cell box in the image")
want = {"attention", "rollout", "knockout", "occlusion", "logit-lens", "heads", "dla", "vit-attention", "vit-rollout"}
check(set(r["methods"]) == want, "methods present: %s" % sorted(r["methods"]))
for name, m in r["methods"].items():
    check(len(m.get("map", [])) == rows * cols, name + ": map has rows*cols numbers")
    check(all(v is None or isinstance(v, (int, float)) for v in m["map"]), name + ": numeric map")
    for f in m["figures"]:
        p = os.path.join(d, f)
        check(os.path.exists(p) and open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n", name + ": PNG " + f)
    for a in m["arrays"].values():
        check(open(os.path.join(d, a), "rb").read(6) == b"\x93NUMPY", name + ": npy " + a)
    check(m["figures"], name + ": has figures")
ko = r["methods"]["knockout"]
check(ko["object_patches"] > 0, "bbox selected object patches")
check(len(ko["windows"]) >= 2 and "object -> T" in ko["windows"][0]["edges"], "knockout windows with object edges")
dla = r["methods"]["dla"]
check(abs(dla["sum_of_contributions"] - dla["target_logit"]) <= 1e-3 * (1 + abs(dla["target_logit"])), "dla adds up")
sys.exit(0 if ok else 1)
PY

# errors: one line, non-zero exit
if "$BIN" explain all -m "$LM" --mmproj "$MP" --image "$TMP/nope.png" -p "q?" -o "$TMP/o2" 2> "$TMP/e1.txt"; then
  fail "missing image accepted"
fi
[ "$(wc -l < "$TMP/e1.txt")" -eq 1 ] && grep -q "nope.png" "$TMP/e1.txt" || fail "missing image error: $(cat "$TMP/e1.txt")"
if "$BIN" explain bogus --image "$SRC/assets/examples/wide.png" -p "q?" -o "$TMP/o3" 2> "$TMP/e2.txt"; then
  fail "unknown method accepted"
fi
grep -q "unknown method 'bogus'" "$TMP/e2.txt" || fail "unknown method error: $(cat "$TMP/e2.txt")"
# numbers are checked, not read with atoi: one line, exit 2, before any model is loaded
for bad in "-t x" "-t 0" "--window -3" "--occ-block 0" "--occ-stride 65" "--discard 1.5" "--discard x" \
           "--top-k 0" "--top-heads 1e3" "--max-side 0"; do
  # shellcheck disable=SC2086
  if "$BIN" explain all --image "$SRC/assets/examples/wide.png" -p "q?" -o "$TMP/o4" $bad 2> "$TMP/e3.txt"; then
    fail "explain $bad accepted"
  else
    rc=$?
  fi
  [ "$rc" -eq 2 ] && [ "$(wc -l < "$TMP/e3.txt")" -eq 1 ] && grep -q "^llava-mech explain: ${bad%% *} '" "$TMP/e3.txt" \
    || fail "explain $bad: exit $rc, stderr: $(cat "$TMP/e3.txt")"
done
# the image-size limit names the file and the limit
if "$BIN" explain attention -m "$LM" --mmproj "$MP" --image "$SRC/assets/examples/wide.png" -p "q?" -o "$TMP/o5" \
    --max-side 100 2> "$TMP/e4.txt"; then
  fail "--max-side 100 accepted a larger image"
fi
[ "$(wc -l < "$TMP/e4.txt")" -eq 1 ] && grep -q "wide.png: image is .*, larger than the limit 100x100" "$TMP/e4.txt" \
  || fail "--max-side error: $(cat "$TMP/e4.txt")"
echo "explain.sh: ok"
