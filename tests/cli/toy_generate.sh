#!/usr/bin/env bash
# toy generate: 20 examples -> files and JSON fields as documented, masks that match
# the boxes, byte-identical reruns, --size, and one-line errors with non-zero exit.
# Usage: toy_generate.sh BIN SRCDIR
set -euo pipefail
BIN=$1
SRC=$2
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$BIN" toy generate --n 20 --seed 3 --noise -o "$T/a" 2>"$T/err"
[ ! -s "$T/err" ] || { echo "unexpected stderr:"; cat "$T/err"; exit 1; }
[ "$(ls "$T/a/images" | wc -l)" = 20 ]
[ "$(ls "$T/a/masks" | wc -l)" = 20 ]
[ "$(wc -l < "$T/a/examples.jsonl")" = 20 ]

"$PY" - "$T/a" "$SRC/tests/cli" <<'PYEOF'
import json, os, sys
d = sys.argv[1]

sys.path.insert(0, sys.argv[2])
from toy_png import read as png_gray

types = ["color", "shape", "count", "exists", "position"]
words = ["zero", "one", "two", "three", "four"]
lines = open(os.path.join(d, "examples.jsonl")).read().splitlines()
for i, line in enumerate(lines):
    ex = json.loads(line)
    for k in ("id", "image", "mask", "question", "answer", "type", "target", "objects"):
        assert k in ex, (i, k)
    assert ex["type"] == types[i % 5], ex
    assert ex["image"] == "images/%06d.png" % i and ex["mask"] == "masks/%06d.png" % i
    objs = ex["objects"]
    assert 1 <= len(objs) <= 4
    for o in objs:
        assert set(o) == {"shape", "color", "bbox"} and len(o["bbox"]) == 4
        x0, y0, x1, y1 = o["bbox"]
        assert 0 <= x0 < x1 <= 224 and 0 <= y0 < y1 <= 224 and 36 <= x1 - x0 <= 64
    if ex["type"] == "count":
        assert ex["answer"] == words[len(objs)] and ex["target"] is None
    if ex["type"] == "exists":
        assert ex["answer"] == ("yes" if (i // 5) % 2 == 0 else "no")
    if ex["target"] is not None:
        assert ex["target"] in objs
        t = ex["target"]
        assert t["shape"] in ex["question"] or t["color"] in ex["question"]
    w, h, ctype, rows = png_gray(os.path.join(d, ex["image"]))
    assert (w, h, ctype) == (224, 224, 2)
    w, h, ctype, rows = png_gray(os.path.join(d, ex["mask"]))
    assert (w, h, ctype) == (224, 224, 0)
    for k, o in enumerate(objs):
        pts = [(x, y) for y in range(h) for x in range(w) if rows[y][x] == k + 1]
        assert pts, (i, k)
        x0, y0, x1, y1 = o["bbox"]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        # the mask's extent is the box, up to the antialiased rim of one pixel
        assert x0 <= min(xs) <= x0 + 2 and x1 - 3 <= max(xs) < x1, (i, k, min(xs), max(xs), o)
        assert y0 <= min(ys) <= y0 + 2 and y1 - 3 <= max(ys) < y1, (i, k, min(ys), max(ys), o)
    assert max(max(r) for r in rows) == len(objs)
print("toy_generate: json and masks ok")
PYEOF

# Determinism: the same command writes the same bytes.
"$BIN" toy generate --n 20 --seed 3 --noise -o "$T/b"
cmp "$T/a/examples.jsonl" "$T/b/examples.jsonl"
for f in "$T"/a/images/*.png "$T"/a/masks/*.png; do cmp "$f" "$T/b/${f#"$T"/a/}"; done
# --start continues the same split.
"$BIN" toy generate --n 5 --seed 3 --noise --start 15 -o "$T/c"
cmp <(tail -n 5 "$T/a/examples.jsonl") "$T/c/examples.jsonl"
cmp "$T/a/images/000017.png" "$T/c/images/000017.png"

# Other canvas sizes.
"$BIN" toy generate --n 3 --seed 1 --size 320x240 -o "$T/d"
"$PY" -c 'import json,sys,struct; l=[json.loads(x) for x in open(sys.argv[1]+"/examples.jsonl")]; assert all((e["width"],e["height"])==(320,240) for e in l); d=open(sys.argv[1]+"/images/000000.png","rb").read(); assert struct.unpack(">II",d[16:24])==(320,240)' "$T/d"

# --noise-half follows the trainer's rule: noise iff the top bit of idx * golden ratio.
"$BIN" toy generate --n 10 --seed 1 --noise-half -o "$T/h"
"$PY" -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1]+"/examples.jsonl")]; assert [e["noise"] for e in l]==[((e["index"]*0x9E3779B97F4A7C15 % 2**64)>>63)==1 for e in l], l; assert any(e["noise"] for e in l) and not all(e["noise"] for e in l)' "$T/h"

# Bad arguments: non-zero exit, exactly one line on stderr, nothing on stdout.
bad() {
    if "$BIN" "$@" >"$T/out" 2>"$T/err"; then echo "expected failure: $*"; exit 1; fi
    [ "$(wc -l < "$T/err")" = 1 ] || { echo "expected one error line for: $*"; cat "$T/err"; exit 1; }
    [ ! -s "$T/out" ] || { echo "unexpected stdout for: $*"; exit 1; }
}
bad toy generate --n abc --seed 1 -o "$T/e"
bad toy generate --n 5 --seed 1
bad toy generate --n 5 --seed 1 --size 10x10 -o "$T/e"
bad toy generate --n 5 --seed 1 --bogus -o "$T/e"
bad toy generate --n 5 --seed 1 -o /dev/null/x
bad toy generate --n 5 --seed 1 --noise --noise-half -o "$T/e"
bad toy frobnicate
grep -q "llava-mech toy generate: --n: 'abc'" <("$BIN" toy generate --n abc --seed 1 -o "$T/e" 2>&1 || true)
"$BIN" toy generate --help | grep -q "examples.jsonl"
echo "toy_generate: ok"
