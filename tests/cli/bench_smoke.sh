#!/usr/bin/env bash
# The benchmarks run end to end on the tiny preset (timings are never checked: speed
# belongs to bench/, not to tests): bench lm prints prefill, the decode rate against a
# streaming limit read from the model's own bytes (a positive ratio) and a memory line
# (not checked against its budget: on a 1 MB model the process's own ~10 MB of code and
# BLAS buffers dominate); bench explain prints a cost multiple for every method; a bad
# option is one error line and a non-zero exit.
set -euo pipefail
BIN=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "bench_smoke.sh: $*" >&2; exit 1; }

"$BIN" bench lm --preset tiny --type q8_0 --dir "$TMP" -t 2 --n-prompt 24 --n-gen 6 > "$TMP/lm.txt" 2> "$TMP/e.txt" \
  || fail "bench lm failed: $(cat "$TMP/e.txt")"
grep -q "^prefill 24 tokens: " "$TMP/lm.txt" || fail "no prefill line: $(cat "$TMP/lm.txt")"
line=$(grep "^decode 6 tokens: " "$TMP/lm.txt") || fail "no decode line: $(cat "$TMP/lm.txt")"
ratio=$(sed -n 's/.*after each token) = \([0-9.]*\) (goal.*/\1/p' <<< "$line")
[ -n "$ratio" ] || fail "no ratio in: $line"
awk -v r="$ratio" 'BEGIN { exit !(r > 0 && r < 10) }' || fail "decode ratio $ratio out of range: $line"
grep -q "^memory: peak RSS [0-9.]* GB; weights" "$TMP/lm.txt" || fail "no memory line: $(cat "$TMP/lm.txt")"

"$BIN" make-model --preset tiny --type f32 --seed 5 -o "$TMP/m" > /dev/null 2>&1 || fail "make-model failed"
"$BIN" bench explain -m "$TMP/m/tiny-f32.gguf" --mmproj "$TMP/m/mmproj-tiny-f16.gguf" -t 1 --reps 1 \
  > "$TMP/ex.txt" 2> "$TMP/e.txt" || fail "bench explain failed: $(cat "$TMP/e.txt")"
for m in capture attention rollout knockout occlusion logit-lens heads dla; do
  grep -Eq "^$m[ (]" "$TMP/ex.txt" || fail "bench explain printed no $m line: $(cat "$TMP/ex.txt")"
done

if "$BIN" bench lm --preset tiny --dir "$TMP" --n-gen 0 > /dev/null 2> "$TMP/e.txt"; then fail "--n-gen 0 accepted"; fi
[ "$(wc -l < "$TMP/e.txt")" -eq 1 ] || fail "bad --n-gen is not one error line: $(cat "$TMP/e.txt")"
exit 0
