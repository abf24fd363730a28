#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: the release build's ctest (gcc), our
# files in llama.cpp itself (tests/llamacpp/compat.sh: needs Node.js >= 20 and the npm
# registry; skipped with a message where Node.js is older or missing unless CI=true;
# LLAVA_MECH_SKIP_LLAMACPP=1 skips it), the same suite under ASan+UBSan built
# with clang (build-asan/; so both compilers build
# everything with -Wall -Wextra -Werror), and the bounded fuzz runs (clang,
# build-fuzz/). Exit status is non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=$(nproc 2>/dev/null || echo 2)

echo "== release tests" >&2
ctest --test-dir build --output-on-failure -j "$JOBS"

echo "== llama.cpp compatibility" >&2
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "${LLAVA_MECH_SKIP_LLAMACPP:-0}" != 0 ]; then
  echo "skipped: LLAVA_MECH_SKIP_LLAMACPP is set" >&2
elif [ "$node_major" -lt 20 ] && [ "${CI:-}" != true ]; then
  # Debian 12 packages Node.js 18; node-llama-cpp needs 20. CI (CI=true) always runs it.
  echo "SKIPPED: llama.cpp comes from npm as node-llama-cpp, which needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
else
  bash tests/llamacpp/compat.sh build
fi

echo "== ASan+UBSan tests (clang)" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLM_SANITIZE=ON -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build build-asan -j "$JOBS" >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE no_sanitize

if [ -x scripts/fuzz.sh ]; then
  echo "== fuzzing" >&2
  bash scripts/fuzz.sh
fi
