"""gguf_np.py - a small, independent GGUF reader in NumPy for the reference scripts.

Written from the GGUF specification (ggml-org/ggml docs/gguf.md) and ggml's block
layouts (ggml/src/ggml-common.h, dequantize_row_* in ggml-quants.c), not from our C code,
so that a golden test compares two independent readings of the same file.

    g = GGUF("model.gguf")
    g.kv["clip.vision.image_size"]      -> python value (arrays become lists)
    g.tensors["v.pre_ln.weight"]        -> TensorInfo(name, type, ne, offset)
    g.get("mm.0.weight")                -> float32 ndarray, numpy shape = reversed(ne)
                                           (ne = [n_in, n_out] gives (n_out, n_in))

Dequantized types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
"""
import struct
from collections import namedtuple

import numpy as np

GGUF_MAGIC = b"GGUF"

# ggml type ids (ggml.h enum ggml_type)
F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16 = 10, 11, 12, 13, 14, 30

# (elements per block, bytes per block)
BLOCK = {
    F32: (1, 4), F16: (1, 2), BF16: (1, 2),
    Q4_0: (32, 18), Q4_1: (32, 20), Q5_0: (32, 22), Q5_1: (32, 24), Q8_0: (32, 34),
    Q4_K: (256, 144), Q5_K: (256, 176), Q6_K: (256, 210),
}
TYPE_NAMES = {F32: "F32", F16: "F16", BF16: "BF16", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0",
              Q5_1: "Q5_1", Q8_0: "Q8_0", Q4_K: "Q4_K", Q5_K: "Q5_K", Q6_K: "Q6_K"}

# GGUF metadata value types
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

TensorInfo = namedtuple("TensorInfo", "name type ne offset")


class GGUFError(Exception):
    pass


class GGUF:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        if self._bytes(4) != GGUF_MAGIC:
            raise GGUFError(f"{path}: not a GGUF file (bad magic)")
        self.version = self._u("<I")
        if self.version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {self.version}")
        n_tensors = self._u("<Q")
        n_kv = self._u("<Q")
        self.kv = {}
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u("<I")
            self.kv[key] = self._value(vtype)
        self.tensors = {}
        order = []
        for _ in range(n_tensors):
            name = self._str()
            n_dims = self._u("<I")
            ne = [self._u("<Q") for _ in range(n_dims)]
            ttype = self._u("<I")
            offset = self._u("<Q")
            self.tensors[name] = TensorInfo(name, ttype, ne, offset)
            order.append(name)
        self.order = order
        align = int(self.kv.get("general.alignment", 32))
        self.data_start = (self.pos + align - 1) // align * align

    # --- primitive readers (bounds-checked) ---
    def _bytes(self, n):
        if self.pos + n > len(self.buf):
            raise GGUFError(f"{self.path}: truncated at offset {self.pos}")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _u(self, fmt):
        return struct.unpack(fmt, self._bytes(struct.calcsize(fmt)))[0]

    def _str(self):
        n = self._u("<Q")
        return self._bytes(n).decode("utf-8", errors="surrogateescape")

    def _value(self, vtype):
        if vtype in _SCALARS:
            return self._u(_SCALARS[vtype])
        if vtype == _STRING:
            return self._str()
        if vtype == _ARRAY:
            etype = self._u("<I")
            n = self._u("<Q")
            return [self._value(etype) for _ in range(n)]
        raise GGUFError(f"{self.path}: unknown metadata type {vtype} at offset {self.pos}")

    # --- tensors ---
    def raw(self, name):
        t = self.tensors[name]
        bs, ts = BLOCK[t.type]
        n = int(np.prod(t.ne, dtype=np.int64))
        if n % bs:
            raise GGUFError(f"{self.path}: {name}: {n} elements not a multiple of block {bs}")
        nbytes = n // bs * ts
        start = self.data_start + t.offset
        if start + nbytes > len(self.buf):
            raise GGUFError(f"{self.path}: {name}: data beyond end of file")
        return np.frombuffer(self.buf, dtype=np.uint8, count=nbytes, offset=start), n

    def get(self, name):
        """Dequantized float32 array with numpy shape reversed(ne)."""
        t = self.tensors[name]
        if t.type not in BLOCK:
            raise GGUFError(f"{self.path}: {name}: tensor type {t.type} not supported by gguf_np")
        raw, n = self.raw(name)
        flat = dequantize(raw, t.type, n)
        return flat.reshape(list(reversed(t.ne)))

    def has(self, name):
        return name in self.tensors


def _f16(raw_u8_2cols):
    return raw_u8_2cols.copy().view(np.float16).astype(np.float32)


def _blocks(raw, ts):
    return raw.reshape(-1, ts)


def _scale_min_k4(scales):
    """6-bit scales and mins of the K-quants (ggml get_scale_min_k4), scales: (nb, 12) uint8.
    Returns (sc, mn) each (nb, 8)."""
    s = scales.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, 0:4] = s[:, 0:4] & 63
    mn[:, 0:4] = s[:, 4:8] & 63
    sc[:, 4:8] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:8] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def dequantize(raw, ttype, n):
    if ttype == F32:
        return raw.copy().view(np.float32)
    if ttype == F16:
        return raw.copy().view(np.float16).astype(np.float32)
    if ttype == BF16:
        u = raw.copy().view(np.uint16).astype(np.uint32) << 16
        return u.view(np.float32)
    b = _blocks(raw, BLOCK[ttype][1])
    if ttype == Q8_0:
        d = _f16(b[:, 0:2])
        q = b[:, 2:34].copy().view(np.int8).astype(np.float32)
        return (d * q).reshape(-1)
    if ttype in (Q4_0, Q4_1):
        # element j < 16 is the low nibble of qs[j], element j+16 the high nibble
        d = _f16(b[:, 0:2])
        if ttype == Q4_0:
            qs = b[:, 2:18]
            lo = (qs & 0x0F).astype(np.float32) - 8
            hi = (qs >> 4).astype(np.float32) - 8
            return (d * np.concatenate([lo, hi], axis=1)).reshape(-1)
        m = _f16(b[:, 2:4])
        qs = b[:, 4:20]
        lo = (qs & 0x0F).astype(np.float32)
        hi = (qs >> 4).astype(np.float32)
        return (d * np.concatenate([lo, hi], axis=1) + m).reshape(-1)
    if ttype in (Q5_0, Q5_1):
        d = _f16(b[:, 0:2])
        off = 2 if ttype == Q5_0 else 4
        qh = b[:, off:off + 4].copy().view("<u4").reshape(-1, 1)
        qs = b[:, off + 4:off + 20]
        j = np.arange(16, dtype=np.uint32).reshape(1, 16)
        xh0 = ((qh >> j) & 1) << 4          # bit j -> high bit of element j
        xh1 = ((qh >> (j + 16)) & 1) << 4   # bit j+16 -> high bit of element j+16
        lo = ((qs & 0x0F).astype(np.uint32) | xh0).astype(np.float32)
        hi = ((qs >> 4).astype(np.uint32) | xh1).astype(np.float32)
        q = np.concatenate([lo, hi], axis=1)
        if ttype == Q5_0:
            return (d * (q - 16)).reshape(-1)
        m = _f16(b[:, 2:4])
        return (d * q + m).reshape(-1)
    if ttype == Q4_K:
        # block: d f16, dmin f16, scales[12], qs[128]; 4 chunks of 64 elements, each
        # chunk = 32 low nibbles (sub-block 2c) then 32 high nibbles (sub-block 2c+1)
        d = _f16(b[:, 0:2])
        dmin = _f16(b[:, 2:4])
        sc, mn = _scale_min_k4(b[:, 4:16])
        qs = b[:, 16:144].reshape(-1, 4, 32)
        q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.float32)
        y = (d * sc)[:, :, None] * q - (dmin * mn)[:, :, None]
        return y.reshape(-1)
    if ttype == Q5_K:
        d = _f16(b[:, 0:2])
        dmin = _f16(b[:, 2:4])
        sc, mn = _scale_min_k4(b[:, 4:16])
        qh = b[:, 16:48]                       # 32 bytes; bit s of qh[l] is the high bit of sub-block s
        qs = b[:, 48:176].reshape(-1, 4, 32)
        q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.uint8)
        s = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
        hb = ((qh[:, None, :] >> s) & 1) << 4
        q = (q | hb).astype(np.float32)
        y = (d * sc)[:, :, None] * q - (dmin * mn)[:, :, None]
        return y.reshape(-1)
    if ttype == Q6_K:
        # block: ql[128], qh[64], scales[16] int8, d f16; two halves of 128 elements
        ql = b[:, 0:128].reshape(-1, 2, 64)
        qh = b[:, 128:192].reshape(-1, 2, 32)
        sc = b[:, 192:208].copy().view(np.int8).astype(np.float32).reshape(-1, 2, 8)
        d = _f16(b[:, 208:210]).reshape(-1, 1, 1)
        q1 = (ql[:, :, 0:32] & 0x0F) | (((qh >> 0) & 3) << 4)
        q2 = (ql[:, :, 32:64] & 0x0F) | (((qh >> 2) & 3) << 4)
        q3 = (ql[:, :, 0:32] >> 4) | (((qh >> 4) & 3) << 4)
        q4 = (ql[:, :, 32:64] >> 4) | (((qh >> 6) & 3) << 4)
        q = np.stack([q1, q2, q3, q4], axis=2).astype(np.float32) - 32   # (nb, 2, 4, 32)
        # scale index for element l of quarter k in a half: is = l//16 + 2k
        l16 = np.arange(32) // 16
        idx = l16[None, :] + 2 * np.arange(4)[:, None]                  # (4, 32)
        s = sc[:, :, idx]                                                # (nb, 2, 4, 32)
        return (d[..., None] * s * q).reshape(-1)
    raise GGUFError(f"tensor type {ttype} not supported by gguf_np")


if __name__ == "__main__":
    import sys
    g = GGUF(sys.argv[1])
    print(f"GGUF v{g.version}: {len(g.kv)} keys, {len(g.tensors)} tensors")
    for k, v in g.kv.items():
        s = repr(v)
        print(f"  {k} = {s[:100]}")
    for name in g.order:
        t = g.tensors[name]
        print(f"  {name} {TYPE_NAMES.get(t.type, t.type)} {t.ne}")
