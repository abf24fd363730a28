#!/usr/bin/env bash
# info: text and JSON on a generated file; a missing file, a non-GGUF file and a
# truncated file each give one error line naming the file and a non-zero exit.
set -euo pipefail
BIN=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "info.sh: $*" >&2; exit 1; }

"$BIN" make-model --preset tiny --type f16 -o "$TMP" > /dev/null 2>&1 || fail "make-model failed"
F="$TMP/tiny-f16.gguf"
"$BIN" info "$F" > "$TMP/info.txt" || fail "info failed"
grep -q "^architecture: *llama" "$TMP/info.txt" || fail "no architecture line"
grep -Eq "^  embedding +64$" "$TMP/info.txt" || fail "no embedding hyper-parameter"
grep -Eq "^  kv heads +2$" "$TMP/info.txt" || fail "no kv heads"
grep -q 'tokenizer.ggml.tokens .*\[string x 512\] "<unk>", "<s>", "</s>", "<0x00>", \.\.\.' "$TMP/info.txt" \
  || fail "token array not abbreviated as expected"
grep -Eq "^  blk.1.ffn_down.weight +f16 +192 x 64 +24576$" "$TMP/info.txt" || fail "tensor row missing"
grep -Eq "^total: 21 tensors, [0-9]+ bytes" "$TMP/info.txt" || fail "totals line missing"
"$BIN" info "$TMP/mmproj-tiny-f16.gguf" > "$TMP/mm.txt" || fail "info on mmproj failed"
grep -Eq "^  projector type +\"mlp\"$" "$TMP/mm.txt" || fail "clip hyper-parameters"
"$BIN" info --json "$F" | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["version"] == 3 and j["alignment"] == 32, j
assert j["hyperparameters"]["embedding_length"] == 64
assert j["totals"]["tensors"] == len(j["tensors"]) == 21
assert j["totals"]["params"] == sum(__import__("math").prod(t["shape"]) for t in j["tensors"])
' || fail "JSON content"

expect_error() { # file, pattern
  set +e
  "$BIN" info "$1" > "$TMP/out.txt" 2> "$TMP/err.txt"
  local rc=$?
  set -e
  [ "$rc" -eq 1 ] || fail "info $1: exit $rc, expected 1"
  [ ! -s "$TMP/out.txt" ] || fail "info $1 printed to stdout"
  [ "$(wc -l < "$TMP/err.txt")" -eq 1 ] || fail "info $1: expected one error line: $(cat "$TMP/err.txt")"
  grep -q "^llava-mech info: $1: .*$2" "$TMP/err.txt" || fail "info $1: message '$(cat "$TMP/err.txt")' lacks '$2'"
}
expect_error "$TMP/missing.gguf" "No such file"
printf 'not a gguf file at all\n' > "$TMP/text.gguf"
expect_error "$TMP/text.gguf" "magic"
head -c 5000 "$F" > "$TMP/cut.gguf"
expect_error "$TMP/cut.gguf" "byte [0-9]*:"
head -c 10 "$F" > "$TMP/cut10.gguf"
expect_error "$TMP/cut10.gguf" "byte 8: expected tensor count"
: > "$TMP/empty.gguf"
expect_error "$TMP/empty.gguf" "byte 0: expected magic"
echo "info.sh: ok"
