#!/usr/bin/env bash
# compat.sh — our files in llama.cpp itself (the build node-llama-cpp 3.21.1 ships, from
# npm; llama.cpp is not packaged in Debian 12). Run by scripts/test.sh; by hand:
#   bash tests/llamacpp/compat.sh [BUILD_DIR]      (default build/, which must be built)
# 1. llama.cpp's gguf reader (ggml's gguf_init_from_file, via ctypes) reads every file
#    we write (make-model's LMs in five types and its mmproj, the shipped model) and sees
#    the keys, values, tensors, types and sizes `llava-mech info` sees.
# 2. llama.cpp loads each LM, tokenizes our prompts to the same ids, and its next-token
#    log-probabilities after the prompt and after one decoded token agree with ours:
#    the shipped model and the `small` preset in F32, F16, Q8_0, Q4_0 and Q4_K; quantized
#    ones also fed one token at a time (our 8-bit decode path throughout) and repacked.
# Tolerances (max |log p ours - log p llama.cpp| over tokens either gives >= 1e-4):
#   F32 1e-4: only summation order differs (measured <= 1.4e-5);
#   F16 2e-3: llama.cpp rounds activations to f16 for F16 weights, we keep f32 (<= 5.8e-4);
#   quantized 5e-2: llama.cpp quantizes activations to 8 bits in every matmul, we only
#   when decoding; a value on a rounding edge then flips one step (<= 1.8e-2). Where both
#   quantize (Q8_0, Q4_K fed one token at a time) the two agree to ~1e-6.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
W=$B/llamacpp
fail() { echo "llamacpp compat: $*" >&2; exit 1; }

command -v node >/dev/null && command -v npm >/dev/null \
  || fail "node and npm are needed (Node.js >= 20; LLAVA_MECH_SKIP_LLAMACPP=1 skips this step)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "node-llama-cpp 3.21.1 needs Node.js >= 20, this is $(node --version) (Debian 12's is 18; LLAVA_MECH_SKIP_LLAMACPP=1 skips this step)"
[ -x "$B/llava-mech" ] && [ -x "$B/tests/lm_probs" ] || fail "$B/llava-mech and $B/tests/lm_probs must be built first"

mkdir -p "$W"
if ! cmp -s tests/llamacpp/package-lock.json "$W/package-lock.json" || [ ! -d "$W/node_modules/node-llama-cpp" ]; then
  cp tests/llamacpp/package.json tests/llamacpp/package-lock.json "$W/"
  # no install scripts: the prebuilt linux-x64 binaries are a dependency of their own,
  # and the optional CUDA/Vulkan/other-platform builds are left out
  (cd "$W" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error) \
    || fail "npm ci of node-llama-cpp failed"
fi
cp tests/llamacpp/compat.mjs "$W/"
LIB=$W/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so
[ -f "$LIB" ] || fail "no $LIB"

M=$W/models
mkdir -p "$M"
TYPES=(f32 f16 q8_0 q4_0 q4_k)
for t in "${TYPES[@]}"; do
  "$B/llava-mech" make-model --preset small --type "$t" -o "$M" >/dev/null || fail "make-model small $t"
done

status=0
python3 tests/llamacpp/gguf_check.py "$LIB" "$B/llava-mech" "$M"/small-*.gguf "$M"/mmproj-small-f16.gguf \
  assets/model/llava-mech-toy-lm.gguf assets/model/llava-mech-toy-mmproj.gguf || status=1

PROMPTS=("What color is the circle?" "USER: héllo ünïcödé 日本 🙂 ASSISTANT: a b c" "x")
compare() { # FILE TOL MODE...
  local f=$1 tol=$2
  shift 2
  echo "== $f ${*:-(one prefill)}"
  "$B/tests/lm_probs" "$f" "$@" "${PROMPTS[@]}" > "$W/ours.json" || { status=1; return; }
  node "$W/compat.mjs" "$f" "$W/ours.json" "$tol" || status=1
}
compare assets/model/llava-mech-toy-lm.gguf 1e-4
compare "$M/small-f32.gguf" 1e-4
compare "$M/small-f16.gguf" 2e-3
for t in q8_0 q4_0 q4_k; do
  compare "$M/small-$t.gguf" 5e-2
  compare "$M/small-$t.gguf" 5e-2 --stepwise
done
compare "$M/small-q8_0.gguf" 5e-2 --repack --stepwise
compare "$M/small-q4_k.gguf" 5e-2 --repack --stepwise
[ $status -eq 0 ] && echo "llamacpp compat: all files agree with llama.cpp" || echo "llamacpp compat: FAILED" >&2
exit $status
