#!/usr/bin/env bash
# make-model: the tiny preset in f32 and q8_0 loads back through `info --json` with the
# planned tensor count, shapes and key values; same seed -> identical LM bytes apart
# from the type; bad preset/type -> one error line and a non-zero exit.
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

# Errors: one line on stderr naming the problem, non-zero exit, no files.
for args in "--preset nope --type f32" "--preset tiny --type q5_1" "--preset tiny --type f32 --mmproj-type q8_0"; do
  set +e
  # shellcheck disable=SC2086
  "$BIN" make-model $args -o "$TMP/bad" > /dev/null 2> "$TMP/err.txt"
  rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "make-model $args succeeded"
  [ "$(wc -l < "$TMP/err.txt")" -eq 1 ] || fail "make-model $args: expected one error line, got: $(cat "$TMP/err.txt")"
  grep -q "^llava-mech make-model: " "$TMP/err.txt" || fail "bad error prefix: $(cat "$TMP/err.txt")"
  [ ! -e "$TMP/bad" ] || fail "make-model $args created output"
done
echo "make_model.sh: ok"
