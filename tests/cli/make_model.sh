#!/usr/bin/env bash
# make-model: the tiny preset in f32 and q8_0 loads back through `info --json` with the
# planned tensor count, shapes and key values; the same seed gives the same bytes for
# any thread count and another seed other bytes; every bad argument and unwritable
# output -> one error line and a non-zero exit, no files.
set -euo pipefail
BIN=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "make_model.sh: $*" >&2; exit 1; }

for t in f32 q8_0; do
  "$BIN" make-model --preset tiny --type "$t" --seed 7 -o "$TMP/m" > "$TMP/out.txt" 2> "$TMP/err.txt" \
    || fail "make-model --type $t failed: $(cat "$TMP/err.txt")"
  [ -f "$TMP/m/tiny-$t.gguf" ] || fail "missing $TMP/m/tiny-$t.gguf"
  [ -f "$TMP/m/mmproj-tiny-f16.gguf" ] || fail "missing mmproj"
  "$BIN" info --json "$TMP/m/tiny-$t.gguf" > "$TMP/lm-$t.json" || fail "info on LM $t failed"
done
"$BIN" info --json "$TMP/m/mmproj-tiny-f16.gguf" > "$TMP/mm.json" || fail "info on mmproj failed"

/usr/bin/python3 - "$TMP" <<'PY' || fail "JSON checks failed"
import json, sys
d = sys.argv[1]
def load(n): return json.load(open(f"{d}/{n}"))
def kv(j): return {m["key"]: m["value"] for m in j["metadata"]}
ok = True
def check(c, what):
    global ok
    if not c:
        print("FAIL:", what, file=sys.stderr); ok = False
for t, ftype, wtype in (("f32", 0, "f32"), ("q8_0", 7, "q8_0")):
    j = load(f"lm-{t}.json"); k = kv(j)
    check(j["architecture"] == "llama", "LM architecture")
    check(j["totals"]["tensors"] == 3 + 9 * 2, f"{t}: tensor count {j['totals']['tensors']}")
    check(k["llama.embedding_length"] == 64 and k["llama.block_count"] == 2, "LM width/blocks")
    check(k["llama.attention.head_count"] == 4 and k["llama.attention.head_count_kv"] == 2, "LM heads")
    check(k["llama.rope.dimension_count"] == 16, "rope dims")
    check(k["general.file_type"] == ftype, f"{t}: file_type {k['general.file_type']}")
    tok = k["tokenizer.ggml.tokens"]
    check(tok["length"] == 512 and tok["head"][:4] == ["<unk>", "<s>", "</s>", "<0x00>"], "vocab head")
    check(k["tokenizer.ggml.token_type"]["head"][:4] == [2, 3, 3, 6], "token types")
    check(k["tokenizer.ggml.bos_token_id"] == 1 and k["tokenizer.ggml.eos_token_id"] == 2, "bos/eos")
    ts = {x["name"]: x for x in j["tensors"]}
    check(ts["blk.1.attn_k.weight"]["shape"] == [64, 32], "attn_k shape (GQA)")
    check(ts["blk.0.ffn_down.weight"]["shape"] == [192, 64], "ffn_down shape")
    check(ts["output.weight"]["shape"] == [64, 512], "output shape")
    check(ts["blk.0.attn_q.weight"]["type"] == wtype, f"{t}: weight type {ts['blk.0.attn_q.weight']['type']}")
    check(ts["blk.0.attn_norm.weight"]["type"] == "f32", "norms stay f32")
j = load("mm.json"); k = kv(j); ts = {x["name"]: x for x in j["tensors"]}
check(j["architecture"] == "clip" and k["clip.projector_type"] == "mlp", "mmproj arch/projector")
check(j["totals"]["tensors"] == 9 + 16 * 2, f"mmproj tensor count {j['totals']['tensors']}")
check(k["clip.vision.block_count"] == 2 and k["clip.vision.image_size"] == 224, "mmproj hparams")
check(k["clip.use_gelu"] is False and k["clip.has_llava_projector"] is True, "mmproj flags")
check(abs(k["clip.vision.image_mean"]["head"][0] - 0.48145466) < 1e-7, "image_mean")
check(ts["v.patch_embd.weight"]["shape"] == [16, 16, 3, 64] and ts["v.patch_embd.weight"]["type"] == "f16", "patch embd")
check(ts["v.position_embd.weight"]["shape"] == [64, 197], "position embd")
check(ts["mm.0.weight"]["shape"] == [64, 64] and ts["mm.2.bias"]["shape"] == [64], "projector")
check(ts["v.blk.1.ffn_down.weight"]["shape"] == [64, 256], "legacy ffn_down = fc1")
sys.exit(0 if ok else 1)
PY

# Determinism: the same seed gives the same bytes for any --threads; another seed does not.
"$BIN" make-model --preset tiny --type q8_0 --seed 7 --threads 1 -o "$TMP/t1" > /dev/null 2>&1 || fail "threads 1"
"$BIN" make-model --preset tiny --type q8_0 --seed 7 --threads 3 -o "$TMP/t3" > /dev/null 2>&1 || fail "threads 3"
"$BIN" make-model --preset tiny --type q8_0 --seed 8 -o "$TMP/s8" > /dev/null 2>&1 || fail "seed 8"
cmp -s "$TMP/t1/tiny-q8_0.gguf" "$TMP/m/tiny-q8_0.gguf" || fail "LM bytes depend on the thread count"
cmp -s "$TMP/t1/tiny-q8_0.gguf" "$TMP/t3/tiny-q8_0.gguf" || fail "LM bytes differ between 1 and 3 threads"
cmp -s "$TMP/t1/mmproj-tiny-f16.gguf" "$TMP/t3/mmproj-tiny-f16.gguf" || fail "mmproj bytes depend on threads"
! cmp -s "$TMP/t1/tiny-q8_0.gguf" "$TMP/s8/tiny-q8_0.gguf" || fail "seeds 7 and 8 give the same LM"

# Errors: one line on stderr naming the problem, the documented exit status (2: bad
# arguments, 1: the output cannot be written), nothing on stdout, no files.
expect() { # exit status, pattern, args...
  local want=$1 pat=$2
  shift 2
  set +e
  "$BIN" make-model "$@" > "$TMP/out.txt" 2> "$TMP/err.txt"
  local rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "make-model $*: exit $rc, expected $want ($(cat "$TMP/err.txt"))"
  [ ! -s "$TMP/out.txt" ] || fail "make-model $* printed to stdout"
  [ "$(wc -l < "$TMP/err.txt")" -eq 1 ] || fail "make-model $*: expected one error line, got: $(cat "$TMP/err.txt")"
  grep -Eq "^llava-mech make-model: $pat" "$TMP/err.txt" || fail "make-model $*: '$(cat "$TMP/err.txt")' lacks '$pat'"
}
expect 2 "unknown preset 'nope' \(presets: tiny" --preset nope --type f32 -o "$TMP/bad"
expect 2 "unknown type 'q5_1'" --preset tiny --type q5_1 -o "$TMP/bad"
expect 2 "unknown type 'Q4_K_M'" --preset tiny --type Q4_K_M -o "$TMP/bad"
expect 2 "--mmproj-type must be f16 or f32, not 'q8_0'" --preset tiny --type f32 --mmproj-type q8_0 -o "$TMP/bad"
expect 2 "--preset, --type and -o are required" --preset tiny --type f32
expect 2 "--preset, --type and -o are required"
expect 2 "-o needs a value" --preset tiny --type f32 -o
expect 2 "--seed 'x1' is not a non-negative integer" --preset tiny --type f32 --seed x1 -o "$TMP/bad"
expect 2 "--threads '0' is not in 1..256" --preset tiny --type f32 --threads 0 -o "$TMP/bad"
expect 2 "unknown option '--bogus'" --preset tiny --type f32 --bogus 1 -o "$TMP/bad"
expect 2 "unexpected argument 'extra'" --preset tiny --type f32 -o "$TMP/bad" extra
[ ! -e "$TMP/bad" ] || fail "a refused command created output"
# Output that cannot be written: a file where the directory should be, a missing
# parent, a directory no one can create files in (/proc), the LM's path taken by a
# directory (the mmproj already written is removed again).
: > "$TMP/plainfile"
expect 1 "$TMP/plainfile: exists and is not a directory" --preset tiny --type f32 -o "$TMP/plainfile"
expect 1 "$TMP/no/such/dir: No such file or directory" --preset tiny --type f32 -o "$TMP/no/such/dir"
expect 1 "/proc(/mmproj-tiny-f16.gguf)?: " --preset tiny --type f32 -o /proc
if [ "$(id -u)" -ne 0 ]; then
  mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
  expect 1 "$TMP/ro: directory not writable" --preset tiny --type f32 -o "$TMP/ro"
fi
mkdir -p "$TMP/half/tiny-f32.gguf"
expect 1 "$TMP/half/tiny-f32.gguf: " --preset tiny --type f32 -o "$TMP/half"
[ ! -e "$TMP/half/mmproj-tiny-f16.gguf" ] || fail "an mmproj without its LM was left behind"
echo "make_model.sh: ok"
