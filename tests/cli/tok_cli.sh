#!/bin/bash
# tokenize and convert-vocab on the shipped toy vocabulary: output formats, --bos,
# templates and their image span, the .model and GGUF paths agreeing, and clear errors.
set -euo pipefail
bin="$1"; src="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
v="$src/toy/vocab/toy-vocab.gguf"
fail() { echo "FAIL: $*"; exit 1; }

# Default format: "ID<tab>PIECE" per token; answer words are single "▁word" pieces.
out="$("$bin" tokenize -m "$v" "red circle")"
[ "$(echo "$out" | wc -l)" = 2 ] || fail "two tokens expected: $out"
echo "$out" | head -1 | grep -qP '^\d+\t▁red$' || fail "first line: $out"
# --ids: one line; no BOS unless --bos
ids="$("$bin" tokenize -m "$v" --ids "red circle")"
[[ "$ids" =~ ^[0-9]+\ [0-9]+$ ]] || fail "--ids: '$ids'"
[ "$("$bin" tokenize -m "$v" --ids --bos "red circle")" = "1 $ids" ] || fail "--bos"
# The same vocabulary read from the .model and converted again gives the same ids.
[ "$("$bin" tokenize --spm "$src/toy/vocab/toy.model" --ids "What shape is the blue object?")" = \
  "$("$bin" tokenize -m "$v" --ids "What shape is the blue object?")" ] || fail ".model vs GGUF"
"$bin" convert-vocab "$src/toy/vocab/toy.model" -o "$tmp/toy.gguf" >/dev/null
cmp -s "$tmp/toy.gguf" "$v" || fail "convert-vocab is not reproducible (toy/vocab/toy-vocab.gguf is stale?)"
# Empty text: no tokens at all.
[ "$("$bin" tokenize -m "$v" --ids "")" = "" ] || fail "empty text"
# Template: BOS, "USER: " (▁USER : ▁), one image slot, then "▁" <0x0A> ...
t="$("$bin" tokenize -m "$v" --template llava --image-tokens 3 --decode "How many objects are there?")"
echo "$t" | grep -q '^image span: \[4, 7)$' || fail "image span: $t"
[ "$(echo "$t" | grep -c $'^-1\t<image>$')" = 3 ] || fail "three image slots: $t"
echo "$t" | sed -n 9p | grep -qP '^\d+\t<0x0A>$' || fail "newline byte after the lone ▁: $t"
echo "$t" | grep -q '^How many objects are there? ASSISTANT:$' || fail "decoded text: $t"
# Errors: one line on stderr naming the problem, exit 1.
set +e
"$bin" tokenize -m "$v" "$(printf 'ab\xc3(')" 2>"$tmp/err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "invalid UTF-8 in text at byte offset 2" "$tmp/err" || fail "bad UTF-8: rc $rc $(cat "$tmp/err")"
set +e
"$bin" tokenize -m "$src/tests/tok/conformance.model" x 2>"$tmp/err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "not a GGUF file" "$tmp/err" || fail "non-GGUF: $(cat "$tmp/err")"
set +e
"$bin" convert-vocab "$src/tests/tok/corpus.txt" -o "$tmp/x.gguf" 2>"$tmp/err"; rc=$?
set -e
[ $rc = 1 ] && [ ! -e "$tmp/x.gguf" ] || fail "convert-vocab of a text file: rc $rc"
if command -v spm_train >/dev/null; then
  # A unigram model (sentencepiece's default) is refused by name.
  spm_train --input="$src/toy/vocab/corpus.txt" --model_prefix="$tmp/uni" --vocab_size=60 \
    --minloglevel=2 >/dev/null 2>&1
  set +e
  "$bin" convert-vocab "$tmp/uni.model" -o "$tmp/uni.gguf" 2>"$tmp/err"; rc=$?
  set -e
  [ $rc = 1 ] && grep -q "model type is unigram; only BPE" "$tmp/err" || fail "unigram: $(cat "$tmp/err")"
fi
echo "tok_cli: ok"
