#!/usr/bin/env bash
# bench encode runs end to end on a tiny mmproj (timings are never checked): the rate
# line, the hook-cost line comparing no hook set, an empty set and non-matching
# patterns, the per-stage breakdown; --hooks selects the timed forwards' set;
# --no-extras leaves out the hook-cost line and the breakdown; bad options fail.
set -euo pipefail
BIN=$1
SRC=$2
MP="$SRC/tests/golden/vision/tiny_f32.gguf"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "encode_bench.sh: $*" >&2; exit 1; }

"$BIN" bench encode --mmproj "$MP" -t 2 --reps 2 > "$TMP/b.txt" || fail "bench encode failed"
grep -Eq "^encode rate [0-9.]+ GFLOP/s = [0-9.]+ of sgemm peak" "$TMP/b.txt" || fail "no rate line: $(cat "$TMP/b.txt")"
grep -Eq "^hook cost \(best of 2, process CPU / wall, ms\): no hook set [0-9.]+ / [0-9.]+ \(x1\.0000 / x1\.0000\); empty hook set [0-9.]+ / [0-9.]+ \(x[0-9.]+ / x[0-9.]+\); 2 non-matching patterns [0-9.]+ / [0-9.]+ \(x[0-9.]+ / x[0-9.]+\); capturing every attention pattern" \
  "$TMP/b.txt" || fail "no hook-cost line: $(cat "$TMP/b.txt")"
grep -q "^breakdown of one forward" "$TMP/b.txt" || fail "no breakdown"
"$BIN" bench encode --mmproj "$MP" -t 1 --reps 1 --hooks nomatch --no-extras > "$TMP/n.txt" || fail "--hooks nomatch failed"
grep -q "timed with 2 non-matching patterns" "$TMP/n.txt" || fail "--hooks not reported: $(cat "$TMP/n.txt")"
! grep -q "^hook cost\|^breakdown" "$TMP/n.txt" || fail "--no-extras printed extras"
if "$BIN" bench encode --mmproj "$MP" --hooks some > /dev/null 2> "$TMP/e.txt"; then fail "--hooks some accepted"; fi
[ "$(wc -l < "$TMP/e.txt")" -eq 1 ] && grep -q "hooks expects none, empty, nomatch or pattern" "$TMP/e.txt" || fail "bad --hooks: $(cat "$TMP/e.txt")"
echo "encode_bench.sh: ok"
