#!/usr/bin/env python3
"""make_malformed.py - writes tests/fuzz/malformed/*.gguf, hand-made broken GGUF files.

Each file breaks exactly one rule of the GGUF layout (ggml/include/gguf.h,
gguf-py/gguf/gguf_reader.py) on top of an otherwise valid little file, built here
byte by byte with struct so the C reader is not used to make its own test input.
tests/test_gguf_malformed.c opens each one and checks the error code and the words
of the message (the table there lists what each file must say). Re-run after
changing a case:  /usr/bin/python3 tests/fuzz/make_malformed.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "malformed")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q8_0 = 0, 1, 8


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, payload):
    return s(key) + struct.pack("<I", typ) + payload


def tinfo(name, ne, typ, off):
    return s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", typ, off)


def header(n_t, n_kv, version=3, magic=b"GGUF"):
    return magic + struct.pack("<IQQ", version, n_t, n_kv)


def pad(b, a=32):
    return b + b"\0" * ((-len(b)) % a)


def gguf(kvs, tinfos, data=b"", version=3, align=32):
    meta = header(len(tinfos), len(kvs), version) + b"".join(kvs) + b"".join(tinfos)
    return pad(meta, align) + data if tinfos else meta


ARCH = kv("general.architecture", STR, s("llama"))
GOOD_KV = [ARCH, kv("llama.block_count", U32, struct.pack("<I", 2))]
T8 = tinfo("t", [8], T_F32, 0)
DATA8 = struct.pack("<8f", *range(8))
valid = gguf(GOOD_KV, [T8], DATA8)
LONG = "blk.0.attn_q.weight.with.a.long.name"
valid_long = gguf(GOOD_KV, [tinfo(LONG, [4, 2], T_F32, 0)], DATA8)
TOKS = kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 3) + s("<unk>") + s("<s>") + s("</s>"))
valid_toks = gguf([ARCH, TOKS], [T8], DATA8)


def nested_arrays(depth):
    p = struct.pack("<IQ", I32, 0)
    for _ in range(depth):
        p = struct.pack("<IQ", ARR, 1) + p
    return p


cases = {
    # header
    "trunc_magic.gguf": b"GG",
    "trunc_header.gguf": b"GGUF" + struct.pack("<I", 3) + b"\1\0",
    "bad_magic.gguf": b"GGML" + valid[4:],
    "bad_version.gguf": header(1, 2, version=7) + valid[24:],
    "version1.gguf": header(1, 2, version=1) + valid[24:],
    "big_endian.gguf": b"GGUF" + struct.pack(">I", 3) + valid[8:],
    "huge_kv_count.gguf": header(1, 1 << 62) + valid[24:],
    "huge_tensor_count.gguf": header(1 << 62, 2) + valid[24:],
    # metadata
    "trunc_in_key.gguf": valid[:24 + len(ARCH) + 8 + 5],
    "trunc_in_value.gguf": valid[:24 + len(ARCH) + 8 + len("llama.block_count") + 4 + 2],
    "huge_key_len.gguf": header(1, 1) + struct.pack("<Q", 1 << 62) + b"general" + b"\0" * 64,
    "unterminated_string.gguf": header(0, 1) + s("k") + struct.pack("<IQ", STR, 100) + b"only ten b",
    "overlong_string.gguf": header(0, 1) + s("k") + struct.pack("<IQ", STR, (1 << 64) - 1) + b"x" * 32,
    "unknown_kv_type.gguf": gguf([ARCH, kv("x", 13, b"\0" * 8)], [T8], DATA8),
    "unknown_array_type.gguf": gguf([ARCH, kv("x", ARR, struct.pack("<IQ", 99, 1) + b"\0" * 8)], [T8], DATA8),
    "huge_array.gguf": gguf([ARCH, kv("x", ARR, struct.pack("<IQ", U32, 1 << 61) + b"\0" * 16)], [T8], DATA8),
    "huge_string_array.gguf": gguf([kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 1 << 40) + s("a"))], []),
    "nested_array_bomb.gguf": gguf([kv("x", ARR, nested_arrays(100))], []),
    "nested_array_huge.gguf": gguf([kv("x", ARR, struct.pack("<IQ", ARR, 1 << 40) + struct.pack("<IQ", U8, 0))], []),
    "bad_bool.gguf": gguf([ARCH, kv("b", BOOL, b"\2")], [T8], DATA8),
    "duplicate_key.gguf": gguf([ARCH, kv("n", U32, b"\1\0\0\0"), kv("n", U32, b"\2\0\0\0")], [T8], DATA8),
    "nul_in_key.gguf": gguf([ARCH, kv("a\0b", U32, b"\1\0\0\0")], [T8], DATA8),
    "bad_alignment.gguf": gguf([ARCH, kv("general.alignment", U32, struct.pack("<I", 48))], [T8], DATA8),
    "alignment_type.gguf": gguf([ARCH, kv("general.alignment", U64, struct.pack("<Q", 32))], [T8], DATA8),
    # tensor infos
    "trunc_in_tensor_info.gguf": valid_long[:24 + sum(map(len, GOOD_KV)) + 8 + len(LONG) + 4 + 8 + 3],
    "trunc_in_array.gguf": valid_toks[:24 + len(ARCH) + len(TOKS) - 2],
    "zero_dims.gguf": gguf(GOOD_KV, [tinfo("t", [], T_F32, 0)], DATA8),
    "five_dims.gguf": gguf(GOOD_KV, [tinfo("t", [1, 1, 1, 1, 1], T_F32, 0)], DATA8),
    "zero_dim.gguf": gguf(GOOD_KV, [tinfo("t", [8, 0], T_F32, 0)], DATA8),
    "negative_dim.gguf": gguf(GOOD_KV, [tinfo("t", [1 << 63], T_F32, 0)], DATA8),
    "dims_overflow.gguf": gguf(GOOD_KV, [tinfo("t", [1 << 32, 1 << 32], T_F32, 0)], DATA8),
    "bytes_overflow.gguf": gguf(GOOD_KV, [tinfo("t", [1 << 62], T_F32, 0)], DATA8),
    "unknown_tensor_type.gguf": gguf(GOOD_KV, [tinfo("t", [8], 4, 0)], DATA8),
    "huge_tensor_type.gguf": gguf(GOOD_KV, [tinfo("t", [8], 0xFFFFFFFF, 0)], DATA8),
    "block_mismatch.gguf": gguf(GOOD_KV, [tinfo("t", [33], T_Q8_0, 0)], b"\0" * 64),
    "offset_beyond_end.gguf": gguf(GOOD_KV, [tinfo("t", [8], T_F32, 1 << 20)], DATA8),
    "offset_wraps.gguf": gguf(GOOD_KV, [tinfo("t", [8], T_F32, (1 << 64) - 32)], DATA8),
    "misaligned_offset.gguf": gguf(GOOD_KV, [tinfo("t", [8], T_F32, 8)], DATA8 + b"\0" * 32),
    "data_truncated.gguf": valid[:-4],
    "duplicate_tensor.gguf": gguf(GOOD_KV, [T8, tinfo("t", [8], T_F32, 32)], DATA8 + b"\0" * 24 + DATA8),
    "nul_in_tensor_name.gguf": gguf(GOOD_KV, [tinfo("t\0x", [8], T_F32, 0)], DATA8),
    # nested arrays of strings: the reader checks every element at every depth
    "nested_unterminated_string.gguf": gguf(
        [ARCH, kv("x", ARR, struct.pack("<IQ", ARR, 2) + struct.pack("<IQ", STR, 1) + s("ok")
                  + struct.pack("<IQ", STR, 2) + s("fine") + struct.pack("<Q", 1000) + b"short")], []),
    "nested_unknown_type.gguf": gguf(
        [ARCH, kv("x", ARR, struct.pack("<IQ", ARR, 2) + struct.pack("<IQ", STR, 1) + s("ok")
                  + struct.pack("<IQ", 14, 1) + b"\0" * 8)], [T8], DATA8),
    "bad_bool_in_array.gguf": gguf([ARCH, kv("flags", ARR, struct.pack("<IQ", BOOL, 3) + b"\1\0\3")], [T8], DATA8),
    # more tensor-info and layout cases
    "huge_tensor_name_len.gguf": header(1, 0) + struct.pack("<Q", (1 << 64) - 2) + b"t" * 40,
    "no_data_section.gguf": (header(1, 2) + b"".join(GOOD_KV) + T8),
    "huge_alignment.gguf": gguf([ARCH, kv("general.alignment", U32, struct.pack("<I", 1 << 31))], [T8], DATA8),
    "zero_alignment.gguf": gguf([ARCH, kv("general.alignment", U32, struct.pack("<I", 0))], [T8], DATA8),
    "q4_k_block_mismatch.gguf": gguf(GOOD_KV, [tinfo("t", [128, 2], 12, 0)], b"\0" * 288),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith(".gguf"):
            os.remove(os.path.join(OUT, name))
    for name, b in sorted(cases.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b)
    with open(os.path.join(OUT, "..", "valid_base.gguf"), "wb") as f:
        f.write(valid)
    print(f"wrote {len(cases)} files to {OUT}")


if __name__ == "__main__":
    main()
