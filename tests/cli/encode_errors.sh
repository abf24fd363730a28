#!/usr/bin/env bash
# encode: every kind of bad image ends with exactly one error line on stderr that starts
# "llava-mech encode: ", names the file and says what is wrong, exit status 1, and no
# output written. Kinds: missing, empty, not an image (text, a GGUF), truncated PNG /
# JPEG / GIF / BMP, 0x0 (PNG, BMP, GIF headers), over the default 16384 limit (header
# only), over a --max-side limit, 16-bit PNM; bad mmproj files likewise.
set -euo pipefail
BIN=$1
SRC=$2
G="$SRC/tests/golden/vision"
MP="$G/tiny_f32.gguf"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "encode_errors.sh: $*" >&2; exit 1; }
PY=/usr/bin/python3

$PY - "$TMP" "$G" <<'PYEOF'
import struct, sys, zlib
tmp, g = sys.argv[1:3]
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def png(w, h, data=b""):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")
open(f"{tmp}/zero.png", "wb").write(png(0, 0))
open(f"{tmp}/zero_w.png", "wb").write(png(0, 10))
open(f"{tmp}/huge.png", "wb").write(png(20000, 20000))      # header only: must be refused before decoding
open(f"{tmp}/wide.png", "wb").write(png(16385, 1))
# BMP: 0x0 (BITMAPINFOHEADER), 24 bpp
bmp = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 0, 0, 1, 24, 0, 0, 2835, 2835, 0, 0)
open(f"{tmp}/zero.bmp", "wb").write(bmp)
# GIF with a 0x0 logical screen and a 0x0 image
gif = b"GIF89a" + struct.pack("<HHBBB", 0, 0, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff" + b"," + struct.pack("<HHHHB", 0, 0, 0, 0, 0) + b"\x02\x02\x44\x01\x00;"
open(f"{tmp}/zero.gif", "wb").write(gif)
for name in ("photo_160x120.png", "formats/small.jpg", "formats/small.gif", "formats/small.bmp", "formats/small_prog.jpg"):
    d = open(f"{g}/{name}", "rb").read()
    base = name.split("/")[-1]
    open(f"{tmp}/cut_{base}", "wb").write(d[: len(d) // 2])
open(f"{tmp}/deep.pgm", "wb").write(b"P5\n2 1\n65535\n\x12\x34\xab\xcd")
open(f"{tmp}/notes.png", "w").write("these are my notes, not a picture\n")
open(f"{tmp}/empty.jpg", "wb").write(b"")
PYEOF

# expect_error FILE REGEX [extra encode args]: one line, status 1, names FILE, matches REGEX, no output
expect_error() {
  local img=$1 re=$2
  shift 2
  rm -f "$TMP/out.npy" "$TMP/out.json"
  set +e
  "$BIN" encode --mmproj "$MP" --image "$img" -o "$TMP/out.npy" "$@" > "$TMP/stdout.txt" 2> "$TMP/stderr.txt"
  local rc=$?
  set -e
  [ $rc -eq 1 ] || fail "$img: exit status $rc, expected 1 ($(cat "$TMP/stderr.txt"))"
  [ "$(wc -l < "$TMP/stderr.txt")" -eq 1 ] || fail "$img: stderr is not one line: $(cat "$TMP/stderr.txt")"
  grep -q "^llava-mech encode: .*$(basename "$img")" "$TMP/stderr.txt" || fail "$img: message does not name it: $(cat "$TMP/stderr.txt")"
  grep -Eq "$re" "$TMP/stderr.txt" || fail "$img: message '$(cat "$TMP/stderr.txt")' does not match /$re/"
  [ ! -e "$TMP/out.npy" ] && [ ! -e "$TMP/out.json" ] || fail "$img: output written despite the error"
  [ ! -s "$TMP/stdout.txt" ] || fail "$img: wrote to stdout: $(cat "$TMP/stdout.txt")"
}

expect_error "$TMP/missing.png"            "cannot open: No such file"
expect_error "$TMP/empty.jpg"              "empty file, not an image"
expect_error "$TMP/notes.png"              "not a readable image"
expect_error "$MP"                         "not a readable image"
expect_error "$TMP/cut_photo_160x120.png"  "cannot decode image"
expect_error "$TMP/cut_small.jpg"          "cannot decode image|not a readable image"
expect_error "$TMP/cut_small_prog.jpg"     "cannot decode image|not a readable image"
expect_error "$TMP/cut_small.gif"          "cannot decode image|not a readable image"
expect_error "$TMP/cut_small.bmp"          "cannot decode image|not a readable image"
expect_error "$TMP/zero.png"               "not a readable image|size 0x0"
expect_error "$TMP/zero_w.png"             "not a readable image|size 0x"
expect_error "$TMP/zero.bmp"               "not a readable image|size 0x0"
expect_error "$TMP/zero.gif"               "not a readable image|size 0x0"
expect_error "$TMP/huge.png"               "20000x20000, larger than the limit 16384x16384"
expect_error "$TMP/wide.png"               "16385x1, larger than the limit 16384x16384"
expect_error "$G/photo_160x120.png"        "160x120, larger than the limit 159x159" --max-side 159
expect_error "$TMP/deep.pgm"               "16-bit PNM .* not supported"
# the limit is the option's: 160 admits the 160x120 photo
"$BIN" encode --mmproj "$MP" --image "$G/photo_160x120.png" --max-side 160 -o "$TMP/ok.npy" > /dev/null \
  || fail "--max-side 160 refused a 160x120 image"

# bad mmproj files: one line, status 1
head -c 100 "$MP" > "$TMP/cut.gguf"
for m in "$TMP/cut.gguf" "$G/photo_160x120.png" "$TMP/none.gguf"; do
  set +e
  "$BIN" encode --mmproj "$m" --image "$G/photo_160x120.png" -o "$TMP/out.npy" > /dev/null 2> "$TMP/stderr.txt"
  rc=$?
  set -e
  [ $rc -eq 1 ] && [ "$(wc -l < "$TMP/stderr.txt")" -eq 1 ] && grep -q "^llava-mech encode: .*$(basename "$m")" "$TMP/stderr.txt" \
    || fail "mmproj $m: rc $rc, $(cat "$TMP/stderr.txt")"
done
echo "encode_errors.sh: ok"
