#!/usr/bin/env bash
# gguf_info: `llava-mech info` against files written independently of our C writer.
#  1. A v2 file made here in Python (struct, from the GGUF layout) with every metadata
#     type, nested arrays of strings, long arrays and strings, a key holding a newline:
#     the text shows every key once, abbreviated as documented, and --json gives the
#     same keys, values and tensor table.
#  2. make-model's tiny LM and mmproj: the text and the JSON list the same keys, the
#     same tensors (name, type, shape, bytes) and the same totals.
#  3. Every file in tests/fuzz/malformed/, with and without --json: exit 1, nothing on
#     stdout, one stderr line "llava-mech info: FILE: byte N: ...".
#  4. Bad invocations: a directory, a FIFO (refused without waiting for a writer), a
#     device, an empty file, a missing file, no file, two files, an unknown option: one
#     error line each and a non-zero exit.
set -euo pipefail
BIN=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "gguf_info.sh: $*" >&2; exit 1; }
PY=/usr/bin/python3

# ---- 1. an independently written v2 file
$PY - "$TMP/crafted.gguf" <<'PY' || fail "could not write the crafted file"
import struct, sys
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b
def kv(key, t, payload): return s(key) + struct.pack("<I", t) + payload
def arr(et, items): return struct.pack("<IQ", et, len(items)) + b"".join(items)
kvs = [
    kv("general.architecture", STR, s("llama")),
    kv("llama.embedding_length", U32, struct.pack("<I", 4096)),
    kv("llama.attention.head_count_kv", U16, struct.pack("<H", 8)),
    kv("llama.rope.freq_base", F64, struct.pack("<d", 500000.0)),
    kv("t.u8", U8, b"\xfa"), kv("t.i8", I8, struct.pack("<b", -7)),
    kv("t.i16", I16, struct.pack("<h", -300)), kv("t.i32", I32, struct.pack("<i", -70000)),
    kv("t.f32", F32, struct.pack("<f", 0.5)), kv("t.bool", BOOL, b"\x01"),
    kv("t.u64", U64, struct.pack("<Q", 2**64 - 1)), kv("t.i64", I64, struct.pack("<q", -2**40)),
    kv("t.long", STR, s("x" * 100)),
    kv("t.u32s", ARR, arr(U32, [struct.pack("<I", i) for i in range(100)])),
    kv("t.strs", ARR, arr(STR, [s(f"w{i}") for i in range(10)])),
    kv("t.nested", ARR, arr(ARR, [arr(STR, [s("a"), s("b")]), arr(STR, []),
                                  arr(ARR, [arr(I8, [struct.pack("<b", -1)])])])),
    kv("bad\nkey", U8, b"\x01"),
]
f32 = struct.pack("<8f", *range(8))
q8 = struct.pack("<e", 0.5) + bytes(range(32))
tinfo = (s("a.f32") + struct.pack("<I", 2) + struct.pack("<QQ", 4, 2) + struct.pack("<IQ", 0, 0)
         + s("b.q8_0") + struct.pack("<I", 1) + struct.pack("<Q", 32) + struct.pack("<IQ", 8, 32))
head = b"GGUF" + struct.pack("<IQQ", 2, 2, len(kvs)) + b"".join(kvs) + tinfo
head += b"\0" * (-len(head) % 32)
data = f32 + b"\0" * 0 + q8 + b"\0" * (-len(q8) % 32)
open(sys.argv[1], "wb").write(head + data)
PY
F="$TMP/crafted.gguf"
"$BIN" info "$F" > "$TMP/c.txt" || fail "info on the crafted file failed"
"$BIN" info --json "$F" > "$TMP/c.json" || fail "info --json on the crafted file failed"
$PY - "$TMP/c.txt" "$TMP/c.json" <<'PY' || fail "crafted file: output checks failed"
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read().split("\n")
j = json.load(open(sys.argv[2]))
bad = []
def check(c, what):
    if not c: bad.append(what)
def line(key):
    m = [l for l in text if re.match(r"^  " + re.escape(key) + r" ", l)]
    check(len(m) == 1, f"{key}: {len(m)} lines")
    return re.sub(r"^  \S+ +\S+ +", "", m[0]) if m else ""
check("format:        GGUF v2, " in "\n".join(text), "v2 format line")
check(any(re.match(r"^  embedding +4096$", l) for l in text), "hyper-parameter embedding")
check(any(re.match(r"^  kv heads +8$", l) for l in text), "hyper-parameter kv heads (u16)")
check(any(re.match(r"^  rope base +500000$", l) for l in text), "hyper-parameter rope base (f64)")
want = {
    "t.u8": "250", "t.i8": "-7", "t.i16": "-300", "t.i32": "-70000", "t.f32": "0.5", "t.bool": "true",
    "t.u64": "18446744073709551615", "t.i64": "-1099511627776",
    "t.long": '"' + "x" * 60 + '"...',
    "t.u32s": "[u32 x 100] 0, 1, 2, 3, 4, 5, 6, 7, ...",
    "t.strs": '[string x 10] "w0", "w1", "w2", "w3", ...',
    "t.nested": '[array x 3] ([string x 2] "a", "b"), ([string x 0]), ([array x 1] ([i8 x 1] -1))',
}
for k, v in want.items():
    got = line(k)
    check(got == v, f"{k}: {got!r} != {v!r}")
check(sum(1 for l in text if l.startswith("  bad\\x0akey ")) == 1, "key with a newline escaped on one line")
n_meta = int(re.search(r"^metadata \((\d+) keys\):$", "\n".join(text), re.M).group(1))
check(n_meta == 17, f"metadata count {n_meta}")
i0 = text.index("metadata (17 keys):")
check(all(l.startswith("  ") for l in text[i0 + 1:i0 + 18]) and text[i0 + 18] == "", "one line per key")
check(any(re.match(r"^  a\.f32 +f32 +4 x 2 +32$", l) for l in text), "tensor row a.f32")
check(any(re.match(r"^  b\.q8_0 +q8_0 +32 +34$", l) for l in text), "tensor row b.q8_0")
check(any(re.match(r"^total: 2 tensors, 66 bytes \(0\.00 MiB\), 40 parameters", l) for l in text), "totals")
# JSON: the same keys in file order, values typed, arrays abbreviated to 8, nested arrays recursive
keys = [m["key"] for m in j["metadata"]]
check(len(keys) == 17 and keys[-1] == "bad\nkey" and keys[0] == "general.architecture", f"json keys {keys}")
kv = {m["key"]: m for m in j["metadata"]}
check(kv["t.u64"]["type"] == "u64" and kv["t.u64"]["value"] == 2**64 - 1, "json u64")
check(kv["t.bool"]["value"] is True and kv["t.i8"]["value"] == -7 and kv["t.f32"]["value"] == 0.5, "json scalars")
check(kv["t.long"]["value"] == "x" * 100, "json string whole")
check(kv["t.u32s"]["value"] == {"elem_type": "u32", "length": 100, "head": list(range(8))}, "json u32 array")
check(kv["t.strs"]["value"]["head"] == [f"w{i}" for i in range(8)], "json string array head")
check(kv["t.nested"]["value"] == {"elem_type": "array", "length": 3, "head": [
    {"elem_type": "string", "length": 2, "head": ["a", "b"]},
    {"elem_type": "string", "length": 0, "head": []},
    {"elem_type": "array", "length": 1, "head": [{"elem_type": "i8", "length": 1, "head": [-1]}]}]},
    f"json nested {kv['t.nested']['value']}")
check(j["version"] == 2 and j["architecture"] == "llama", "json header")
check(j["hyperparameters"]["attention.head_count_kv"] == 8, "json hyper-parameters")
check(j["tensors"] == [{"name": "a.f32", "type": "f32", "shape": [4, 2], "bytes": 32},
                       {"name": "b.q8_0", "type": "q8_0", "shape": [32], "bytes": 34}], f"json tensors {j['tensors']}")
check(j["totals"] == {"tensors": 2, "bytes": 66, "params": 40}, f"json totals {j['totals']}")
for b in bad: print("FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# Another architecture: llama.cpp names its LM keys like LLaMA's, and info shows them.
$PY - "$TMP/qwen.gguf" <<'PY' || fail "could not write qwen.gguf"
import struct, sys
def s(b): return struct.pack("<Q", len(b)) + b.encode()
kvs = [s("general.architecture") + struct.pack("<I", 8) + s("qwen2"),
       s("qwen2.block_count") + struct.pack("<II", 4, 28),
       s("qwen2.attention.head_count_kv") + struct.pack("<II", 4, 4)]
open(sys.argv[1], "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
PY
"$BIN" info "$TMP/qwen.gguf" > "$TMP/q.txt" || fail "info on qwen.gguf failed"
grep -Eq "^  blocks +28$" "$TMP/q.txt" && grep -Eq "^  kv heads +4$" "$TMP/q.txt" \
  || fail "qwen2 hyper-parameters not shown: $(cat "$TMP/q.txt")"
"$BIN" info --json "$TMP/qwen.gguf" | $PY -c 'import json,sys; h=json.load(sys.stdin)["hyperparameters"]; assert h == {"block_count": 28, "attention.head_count_kv": 4}, h' \
  || fail "qwen2 hyper-parameters in JSON"

# ---- 2. text and JSON agree on make-model's files
"$BIN" make-model --preset tiny --type q4_k -o "$TMP/m" > /dev/null 2>&1 || fail "make-model failed"
for f in "$TMP/m/tiny-q4_k.gguf" "$TMP/m/mmproj-tiny-f16.gguf"; do
  "$BIN" info "$f" > "$TMP/t.txt" || fail "info $f"
  "$BIN" info --json "$f" > "$TMP/t.json" || fail "info --json $f"
  $PY - "$TMP/t.txt" "$TMP/t.json" <<'PY' || fail "text and JSON differ for $f"
import json, re, sys
text = open(sys.argv[1]).read().split("\n")
j = json.load(open(sys.argv[2]))
i0 = next(i for i, l in enumerate(text) if l.startswith("metadata ("))
t0 = next(i for i, l in enumerate(text) if l.startswith("tensors ("))
keys = [l.split()[0] for l in text[i0 + 1:t0] if l.strip()]
assert keys == [m["key"] for m in j["metadata"]], "metadata keys"
types = [l.split()[1] for l in text[i0 + 1:t0] if l.strip()]
assert types == [m["type"] for m in j["metadata"]], "metadata types"
rows = []
for l in text[t0 + 2:]:
    if not l.strip(): break
    m = re.match(r"^  (\S+) +(\S+) +(.*?) +(\d+)$", l)
    rows.append((m.group(1), m.group(2), [int(x) for x in m.group(3).split(" x ")], int(m.group(4))))
assert rows == [(t["name"], t["type"], t["shape"], t["bytes"]) for t in j["tensors"]], "tensor table"
tot = next(l for l in text if l.startswith("total: "))
m = re.match(r"total: (\d+) tensors, (\d+) bytes .*, (\d+) parameters", tot)
assert [int(x) for x in m.groups()] == [j["totals"]["tensors"], j["totals"]["bytes"], j["totals"]["params"]], tot
assert j["totals"]["bytes"] == sum(t["bytes"] for t in j["tensors"]), "bytes total"
hp = [l for l in text if re.match(r"^  (context|embedding|blocks|heads|kv heads|ffn|rope dims|image size|patch|width) ", l)]
assert len(hp) >= 5 and len(j["hyperparameters"]) >= 5, "hyper-parameters"
PY
done

# ---- 3. every malformed file, both output modes
n=0
for f in "$SRC"/tests/fuzz/malformed/*.gguf; do
  for mode in "" "--json"; do
    set +e
    # shellcheck disable=SC2086
    "$BIN" info $mode "$f" > "$TMP/out.txt" 2> "$TMP/err.txt"
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "info $mode $f: exit $rc, expected 1"
    [ ! -s "$TMP/out.txt" ] || fail "info $mode $f printed to stdout"
    [ "$(wc -l < "$TMP/err.txt")" -eq 1 ] || fail "info $mode $f: not one error line: $(cat "$TMP/err.txt")"
    grep -Eq "^llava-mech info: $f: byte [0-9]+: .{10,}" "$TMP/err.txt" \
      || fail "info $mode $f: '$(cat "$TMP/err.txt")' does not name file and byte"
  done
  n=$((n + 1))
done
[ "$n" -ge 45 ] || fail "only $n malformed files"

# ---- 4. bad invocations
expect() { # exit status, pattern, args...
  local want=$1 pat=$2
  shift 2
  set +e
  "$BIN" info "$@" > "$TMP/out.txt" 2> "$TMP/err.txt"
  local rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "info $*: exit $rc, expected $want"
  [ ! -s "$TMP/out.txt" ] || fail "info $* printed to stdout"
  [ "$(wc -l < "$TMP/err.txt")" -eq 1 ] || fail "info $*: not one error line: $(cat "$TMP/err.txt")"
  grep -Eq "^llava-mech info: $pat" "$TMP/err.txt" || fail "info $*: '$(cat "$TMP/err.txt")' lacks '$pat'"
}
mkdir "$TMP/dir.gguf"
expect 1 "$TMP/dir.gguf: is a directory \(expected a GGUF file\)$" "$TMP/dir.gguf"
expect 1 "$TMP/dir.gguf: is a directory" --json "$TMP/dir.gguf"
: > "$TMP/empty.gguf"
expect 1 "$TMP/empty.gguf: byte 0: expected magic" "$TMP/empty.gguf"
expect 1 "$TMP/none.gguf: No such file or directory$" "$TMP/none.gguf"
mkfifo "$TMP/pipe.gguf"
set +e
timeout 20 "$BIN" info "$TMP/pipe.gguf" > /dev/null 2> "$TMP/err.txt"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "info on a FIFO: exit $rc (124: it blocked)"
grep -q "pipe.gguf: not a regular file (expected a GGUF file)$" "$TMP/err.txt" || fail "FIFO: $(cat "$TMP/err.txt")"
expect 1 "/dev/null: not a regular file" /dev/null
expect 2 "no file given"
expect 2 "no file given" --json
expect 2 "one file at a time" "$F" "$F"
expect 2 "unknown option '--jsn'" --jsn "$F"
echo "gguf_info.sh: ok"
