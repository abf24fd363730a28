#!/bin/bash
# Conformance through the command line: convert-vocab turns the conformance .model into
# a GGUF, `tokenize --file` encodes every line, and the ids must equal sentencepiece's:
#   1. the committed expected ids (tests/tok/expected_ids.txt, from tests/tok/regen.sh);
#   2. a live spm_encode on a second, freshly drawn set of strings (seed 11), when
#      spm_encode and /usr/bin/python3 are installed (setup.sh installs both).
set -euo pipefail
bin="$1"; src="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
tok="$src/tests/tok"
"$bin" convert-vocab "$tok/conformance.model" -o "$tmp/v.gguf" >"$tmp/convert.out"
grep -q "3000 pieces (with byte fallback)" "$tmp/convert.out" || { cat "$tmp/convert.out"; exit 1; }
"$bin" tokenize -m "$tmp/v.gguf" --file "$tok/strings.txt" >"$tmp/ours.txt"
if ! cmp -s "$tmp/ours.txt" "$tok/expected_ids.txt"; then
  echo "FAIL: tokenize --file differs from tests/tok/expected_ids.txt:"
  diff "$tmp/ours.txt" "$tok/expected_ids.txt" | head -20
  exit 1
fi
echo "committed: $(wc -l <"$tok/strings.txt") strings agree"
if command -v spm_encode >/dev/null && [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 "$tok/make_strings.py" 11 >"$tmp/strings.txt"
  spm_encode --model="$tok/conformance.model" --output_format=id <"$tmp/strings.txt" >"$tmp/spm.txt"
  "$bin" tokenize -m "$tmp/v.gguf" --file "$tmp/strings.txt" >"$tmp/ours2.txt"
  if ! cmp -s "$tmp/ours2.txt" "$tmp/spm.txt"; then
    echo "FAIL: live spm_encode differs:"
    diff "$tmp/ours2.txt" "$tmp/spm.txt" | head -20
    exit 1
  fi
  echo "live spm_encode: $(wc -l <"$tmp/strings.txt") strings agree"
  # Two more vocabularies trained on the spot exercise the rules LLaMA's does not:
  # no byte fallback (unknown runs -> one unk) with user-defined and control symbols,
  # and no dummy prefix. Both through convert-vocab -> GGUF -> tokenize.
  printf 'x<image>y\n<obj><obj> abab\n<ctl> <image>\nabc ab cab\n' >>"$tmp/strings.txt"
  common=(--input="$src/tests/tok/corpus.txt" --model_type=bpe --normalization_rule_name=identity
          --remove_extra_whitespaces=false --num_threads=1 --minloglevel=2)
  spm_train "${common[@]}" --model_prefix="$tmp/nobf" --vocab_size=1500 --byte_fallback=false \
    --character_coverage=0.995 --user_defined_symbols='<image>,<obj>,ab' --control_symbols='<ctl>' >/dev/null 2>&1
  spm_train "${common[@]}" --model_prefix="$tmp/nodp" --vocab_size=1000 --byte_fallback=true \
    --add_dummy_prefix=false --character_coverage=0.9999 >/dev/null 2>&1
  for m in nobf nodp; do
    spm_encode --model="$tmp/$m.model" --output_format=id <"$tmp/strings.txt" >"$tmp/spm_$m.txt"
    "$bin" convert-vocab "$tmp/$m.model" -o "$tmp/$m.gguf" >/dev/null
    "$bin" tokenize -m "$tmp/$m.gguf" --file "$tmp/strings.txt" >"$tmp/ours_$m.txt"
    if ! cmp -s "$tmp/ours_$m.txt" "$tmp/spm_$m.txt"; then
      echo "FAIL: vocabulary $m differs from live spm_encode:"
      diff "$tmp/ours_$m.txt" "$tmp/spm_$m.txt" | head -20
      exit 1
    fi
    echo "live spm_encode, vocabulary $m: $(wc -l <"$tmp/strings.txt") strings agree"
  done
else
  echo "spm_encode not installed: live comparison skipped"
fi
