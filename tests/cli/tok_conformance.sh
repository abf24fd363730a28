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
else
  echo "spm_encode not installed: live comparison skipped"
fi
