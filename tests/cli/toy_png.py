"""Minimal PNG reader for the CLI tests (no PIL here): 8-bit gray/RGB/RGBA,
non-interlaced, all five filters (PNG spec, section 9). Also a command line:
  toy_png.py same DIR_A DIR_B  -> exit 1 unless the PNGs of both folders have
  the same names and decode to the same pixels (byte-equal files short-cut)."""
import os
import struct
import sys
import zlib


def read(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and interlace == 0, path
    bpp = {0: 1, 2: 3, 6: 4}[ctype]
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ctype, rows


def same(da, db):
    na, nb = sorted(os.listdir(da)), sorted(os.listdir(db))
    if na != nb:
        print("different file lists: %s vs %s" % (da, db))
        return False
    for n in na:
        pa, pb = os.path.join(da, n), os.path.join(db, n)
        if open(pa, "rb").read() != open(pb, "rb").read() and read(pa) != read(pb):
            print("pixels differ: %s %s" % (pa, pb))
            return False
    return True


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "same":
        sys.exit(0 if same(sys.argv[2], sys.argv[3]) else 1)
    sys.exit("usage: toy_png.py same DIR_A DIR_B")
