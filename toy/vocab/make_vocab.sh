#!/bin/bash
# Builds the toy model's vocabulary (issue 5):
#   toy/vocab/corpus.txt     every toy-world question and answer (docs/toy-world.md)
#   toy/vocab/toy.model      spm_train BPE with LLaMA's settings on that corpus
#   toy/vocab/toy-vocab.gguf the same vocabulary as GGUF tokenizer keys (convert-vocab)
# Usage: toy/vocab/make_vocab.sh [path/to/llava-mech]   (default: build/llava-mech)
# Needs spm_train (Debian package sentencepiece). Deterministic: --num_threads=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../build/llava-mech}"
shapes="circle square triangle diamond"
colors="red green blue yellow purple orange"
counts="one two three four"

# One line per question with each answer it can have, in the prompt's words. Each
# question is written a few times so that its words outrank chance pairs in the BPE
# merge order; the answers appear after "ASSISTANT:" exactly as in training examples.
{
  for rep in 1 2 3; do
    for s in $shapes; do
      for c in $colors; do echo "USER: What color is the $s? ASSISTANT: $c"; done
    done
    for c in $colors; do
      for s in $shapes; do echo "USER: What shape is the $c object? ASSISTANT: $s"; done
    done
    for n in $counts; do echo "USER: How many objects are there? ASSISTANT: $n"; done
    for c in $colors; do
      for s in $shapes; do
        for a in yes no; do echo "USER: Is there a $c $s? ASSISTANT: $a"; done
        for a in left right; do echo "USER: Is the $c $s on the left or the right? ASSISTANT: $a"; done
      done
    done
  done
} >"$here/corpus.txt"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# vocab_size: 256 byte pieces + 3 specials + the characters + enough merges that every
# word of the corpus is one piece; --hard_vocab_limit=false stops early once the
# corpus has no pair left to merge.
spm_train --input="$here/corpus.txt" --model_prefix="$tmp/toy" \
  --model_type=bpe --vocab_size=512 --hard_vocab_limit=false --byte_fallback=true --split_digits=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --add_dummy_prefix=true --allow_whitespace_only_pieces=true \
  --character_coverage=1.0 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --num_threads=1 --minloglevel=2 >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
cp "$tmp/toy.model" "$here/toy.model"
"$bin" convert-vocab "$here/toy.model" -o "$here/toy-vocab.gguf"
