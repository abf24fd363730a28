#!/bin/bash
# Trains the conformance vocabulary tests/tok/conformance.model from the committed
# corpus with LLaMA's SentencePiece settings. Run from anywhere; needs spm_train
# (Debian package sentencepiece). --num_threads=1 keeps the result deterministic.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
spm_train --input="$here/corpus.txt" --model_prefix="$tmp/conformance" \
  --model_type=bpe --vocab_size=3000 --byte_fallback=true --split_digits=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --add_dummy_prefix=true --allow_whitespace_only_pieces=true \
  --character_coverage=0.9999 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --num_threads=1 --max_sentence_length=100000 --minloglevel=2 >"$tmp/log" 2>&1 \
  || { cat "$tmp/log" >&2; exit 1; }
cp "$tmp/conformance.model" "$here/conformance.model"
echo "wrote $here/conformance.model"
