#!/usr/bin/env bash
# vqa --explain: every example with a target object gets a pointing/mass score per
# method; the summary's "explain" figures are the means of those scores, per method and
# per type; two shards merged give the same figures as one run; a bad method list is a
# usage error.
set -euo pipefail
BIN=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "vqa_explain.sh: $*" >&2; exit 1; }

"$BIN" make-model --preset tiny --type f32 --seed 5 -o "$TMP/m" > /dev/null 2>&1 || fail "make-model failed"
M=(-m "$TMP/m/tiny-f32.gguf" --mmproj "$TMP/m/mmproj-tiny-f16.gguf" --threads 1)
DATA="$SRC/assets/vqa/examples.jsonl"
"$BIN" vqa "$DATA" "${M[@]}" --limit 12 --explain occlusion,knockout,attention -o "$TMP/all" > "$TMP/all.txt" \
  || fail "vqa --explain failed"
grep -q "^occlusion" "$TMP/all.txt" || fail "no explain table in: $(cat "$TMP/all.txt")"
for s in 0 1; do
  "$BIN" vqa "$DATA" "${M[@]}" --limit 12 --shard $s/2 --explain occlusion,knockout,attention -o "$TMP/s$s" \
    > /dev/null || fail "shard $s failed"
done
"$BIN" vqa merge "$TMP/s0" "$TMP/s1" -o "$TMP/merged" > /dev/null || fail "merge failed"

/usr/bin/python3 - "$TMP" "$DATA" <<'PY' || fail "checks failed"
import json, sys
d, data = sys.argv[1], sys.argv[2]
ex = [json.loads(l) for l in open(data)][:12]
res = [json.loads(l) for l in open(f"{d}/all/results.jsonl")]
ok = True
def check(c, what):
    global ok
    if not c:
        print("FAIL:", what, file=sys.stderr); ok = False
check(len(res) == 12, "12 results")
with_target = 0
for e, r in zip(ex, res):
    if e.get("target"):
        with_target += 1
        check("explain" in r and set(r["explain"]) >= {"occlusion", "knockout", "attention", "vit-attention"},
              "scores for example %s" % e["id"])
        for m, s in r.get("explain", {}).items():
            check(isinstance(s["pointing"], bool) and 0 <= s["mass"] <= 1, "score range %s %s" % (e["id"], m))
    else:
        check("explain" not in r, "no scores without a target (%s)" % e["id"])
s = json.load(open(f"{d}/all/summary.json"))
for m, agg in s["explain"].items():
    scores = [r["explain"][m] for r in res if "explain" in r and m in r["explain"]]
    check(agg["n"] == len(scores) == with_target, "%s: n" % m)
    check(abs(agg["pointing"] - sum(x["pointing"] for x in scores) / len(scores)) < 1e-9, "%s: pointing mean" % m)
    check(abs(agg["mass"] - sum(x["mass"] for x in scores) / len(scores)) < 1e-6, "%s: mass mean" % m)
    check(sum(t["n"] for t in agg["per_type"].values()) == agg["n"], "%s: per-type counts" % m)
mg = json.load(open(f"{d}/merged/summary.json"))
check(mg["explain"] == s["explain"], "merged shards give the same explain figures")
sys.exit(0 if ok else 1)
PY

if "$BIN" vqa "$DATA" "${M[@]}" --explain bogus -o "$TMP/bad" 2> "$TMP/e.txt"; then fail "bad method accepted"; fi
grep -q "unknown method 'bogus'" "$TMP/e.txt" || fail "bad method error: $(cat "$TMP/e.txt")"
if "$BIN" vqa "$DATA" "${M[@]}" --explain occlusion --baseline "$TMP/none.npy" -o "$TMP/bad" 2> "$TMP/e.txt"; then
    fail "missing baseline file accepted"
fi
grep -q "none.npy" "$TMP/e.txt" || fail "baseline error does not name the file: $(cat "$TMP/e.txt")"
[ "$(wc -l < "$TMP/e.txt")" -eq 1 ] || fail "baseline error is not one line: $(cat "$TMP/e.txt")"
if "$BIN" vqa "$DATA" "${M[@]}" --explain occlusion --occ-block 0 -o "$TMP/bad" 2> "$TMP/e.txt"; then
    fail "--occ-block 0 accepted"
fi
grep -q "occ-block" "$TMP/e.txt" || fail "--occ-block error: $(cat "$TMP/e.txt")"
echo "vqa_explain.sh: ok"
