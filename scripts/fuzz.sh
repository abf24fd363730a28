#!/usr/bin/env bash
# Builds build-fuzz/ with clang and libFuzzer (-DLM_FUZZ=ON: library and targets
# instrumented with ASan+UBSan) and runs every tests/fuzz/fuzz_*.c target for a
# bounded time from its seed corpus tests/fuzz/corpus/<name>/ (fuzz_gguf -> gguf; it
# also starts from the hand-made broken files in tests/fuzz/malformed/).
# New inputs go to build-fuzz/corpus/<name>/, crashes to build-fuzz/artifacts/.
# Exit status is non-zero when any target crashes, leaks, times out or fails to build.
#   FUZZ_SECONDS=N  overrides every target's time (default: gguf 60 s, others 30 s)
#   FUZZ_SEED=N     libFuzzer seed (default 1, so that a CI run is repeatable; 0 = random)
# The gguf seed corpus is regenerated with: build/tests/test_gguf --write-corpus tests/fuzz/corpus/gguf
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DLM_FUZZ=ON >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do
  [ -e "$src" ] || continue
  targets+=("$(basename "$src" .c)")
done
if ((${#targets[@]} == 0)); then
  echo "fuzz: no targets in tests/fuzz/" >&2
  exit 0
fi
cmake --build build-fuzz -j "$JOBS" --target "${targets[@]}" >/dev/null

mkdir -p build-fuzz/artifacts
status=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  secs=${FUZZ_SECONDS:-$([ "$name" = gguf ] && echo 60 || echo 30)}
  work=build-fuzz/corpus/$name
  mkdir -p "$work"
  seeds=()
  [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
  # the hand-made broken files start the gguf run next to the valid ones
  [ "$name" = gguf ] && [ -d tests/fuzz/malformed ] && seeds+=(tests/fuzz/malformed)
  exe=$(find build-fuzz -type f -name "$t" -perm -u+x | head -n 1)
  echo "fuzz: $t for ${secs}s (seeds: ${seeds[*]:-none})" >&2
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$exe" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="build-fuzz/artifacts/$name-" -print_final_stats=1 \
      "$work" "${seeds[@]}" > "build-fuzz/$t.log" 2>&1; then
    echo "fuzz: $t FAILED; log: build-fuzz/$t.log" >&2
    tail -n 40 "build-fuzz/$t.log" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "build-fuzz/$t.log" | tail -n 2 >&2 || true
  fi
done
exit $status
