#!/usr/bin/env python3
"""gguf_check.py — reads GGUF files with llama.cpp's own reader (ggml's gguf_init_from_file,
from the libggml-base.so that node-llama-cpp ships, called through ctypes) and checks that
it sees what `llava-mech info --json` sees: version, alignment, data offset, every key with
its type (and the value, for scalars and strings), every tensor with its type and size,
each tensor inside the file at an aligned offset.

usage: gguf_check.py LIBGGML_BASE.so LLAVA_MECH FILE.gguf...
Exit status 1 (with one line per difference) when anything differs or llama.cpp refuses
a file."""
import ctypes
import json
import os
import subprocess
import sys

GGUF_TYPES = {0: "u8", 1: "i8", 2: "u16", 3: "i16", 4: "u32", 5: "i32", 6: "f32", 7: "bool",
              8: "string", 9: "array", 10: "u64", 11: "i64", 12: "f64"}
GGML_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0",
              10: "q2_K", 11: "q3_K", 12: "q4_K", 13: "q5_K", 14: "q6_K", 30: "bf16"}


class InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def load(lib_path):
    lib = ctypes.CDLL(lib_path)
    sig = {
        "gguf_init_from_file": (ctypes.c_void_p, [ctypes.c_char_p, InitParams]),
        "gguf_free": (None, [ctypes.c_void_p]),
        "gguf_get_version": (ctypes.c_uint32, [ctypes.c_void_p]),
        "gguf_get_alignment": (ctypes.c_size_t, [ctypes.c_void_p]),
        "gguf_get_data_offset": (ctypes.c_size_t, [ctypes.c_void_p]),
        "gguf_get_n_kv": (ctypes.c_int64, [ctypes.c_void_p]),
        "gguf_get_key": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_kv_type": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_arr_type": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_arr_n": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_u32": (ctypes.c_uint32, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_i32": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_f32": (ctypes.c_float, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_bool": (ctypes.c_bool, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_str": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_n_tensors": (ctypes.c_int64, [ctypes.c_void_p]),
        "gguf_get_tensor_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_type": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_offset": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_size": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def scalar(lib, g, i, t):
    if t == "u32":
        return lib.gguf_get_val_u32(g, i)
    if t == "i32":
        return lib.gguf_get_val_i32(g, i)
    if t == "f32":
        return lib.gguf_get_val_f32(g, i)
    if t == "bool":
        return lib.gguf_get_val_bool(g, i)
    if t == "string":
        return lib.gguf_get_val_str(g, i).decode("utf-8")
    return None


def check(lib, exe, path):
    bad = []
    g = lib.gguf_init_from_file(path.encode(), InitParams(True, None))
    if not g:
        return [f"{path}: llama.cpp's gguf reader refused the file"]
    ours = json.loads(subprocess.run([exe, "info", "--json", path], check=True,
                                     capture_output=True, text=True).stdout)
    size = os.path.getsize(path)
    for what, theirs, mine in (("version", lib.gguf_get_version(g), ours["version"]),
                               ("alignment", lib.gguf_get_alignment(g), ours["alignment"]),
                               ("data offset", lib.gguf_get_data_offset(g), ours["data_offset"])):
        if theirs != mine:
            bad.append(f"{path}: {what}: llama.cpp {theirs}, ours {mine}")
    meta = ours["metadata"]
    if lib.gguf_get_n_kv(g) != len(meta):
        bad.append(f"{path}: llama.cpp sees {lib.gguf_get_n_kv(g)} keys, ours {len(meta)}")
    for i, m in enumerate(meta[:lib.gguf_get_n_kv(g)]):
        key = lib.gguf_get_key(g, i).decode()
        t = GGUF_TYPES.get(lib.gguf_get_kv_type(g, i), "?")
        if key != m["key"] or t != m["type"]:
            bad.append(f"{path}: key {i}: llama.cpp {key} ({t}), ours {m['key']} ({m['type']})")
            continue
        if t == "array":
            et = GGUF_TYPES.get(lib.gguf_get_arr_type(g, i), "?")
            n = lib.gguf_get_arr_n(g, i)
            if et != m["value"]["elem_type"] or n != m["value"]["length"]:
                bad.append(f"{path}: {key}: llama.cpp {n} x {et}, ours {m['value']['length']} x "
                           f"{m['value']['elem_type']}")
            continue
        v = scalar(lib, g, i, t)
        if v is not None and (abs(v - m["value"]) > 1e-6 * abs(v) if t == "f32" else v != m["value"]):
            bad.append(f"{path}: {key}: llama.cpp {v!r}, ours {m['value']!r}")
    tensors = ours["tensors"]
    if lib.gguf_get_n_tensors(g) != len(tensors):
        bad.append(f"{path}: llama.cpp sees {lib.gguf_get_n_tensors(g)} tensors, ours {len(tensors)}")
    data, align = lib.gguf_get_data_offset(g), lib.gguf_get_alignment(g)
    for i, tm in enumerate(tensors[:lib.gguf_get_n_tensors(g)]):
        name = lib.gguf_get_tensor_name(g, i).decode()
        t = GGML_TYPES.get(lib.gguf_get_tensor_type(g, i), "?")
        off, nbytes = lib.gguf_get_tensor_offset(g, i), lib.gguf_get_tensor_size(g, i)
        if (name, t, nbytes) != (tm["name"], tm["type"], tm["bytes"]):
            bad.append(f"{path}: tensor {i}: llama.cpp {name} {t} {nbytes} B, ours {tm['name']} "
                       f"{tm['type']} {tm['bytes']} B")
        if off % align or data + off + nbytes > size:
            bad.append(f"{path}: tensor {name}: offset {off} unaligned or past the end")
    lib.gguf_free(g)
    print(f"{'ok  ' if not bad else 'FAIL'} {path}: llama.cpp's gguf reader sees v{ours['version']}, "
          f"{len(meta)} keys, {len(tensors)} tensors, the same as ours")
    return bad


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    lib = load(sys.argv[1])
    bad = []
    for path in sys.argv[3:]:
        bad += check(lib, sys.argv[2], path)
    for b in bad:
        print("FAIL", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
