"""vision_ref.py - PyTorch reference for the vision tower and LLaVA projector.

Written from the HF transformers CLIPVisionModel + LlavaMultiModalProjector equations and
the LLaVA-1.5 / CLIPImageProcessor preprocessing (PIL), NOT from our C code. Weights come
from the same GGUF file through gguf_np (an independent reader); the forward runs in
float64 so the golden is exact up to the weights' own rounding.

    /usr/bin/python3 tests/reference/vision_ref.py MMPROJ.gguf IMAGE.png OUT_PREFIX [--pipeline pad|crop]

writes OUT_PREFIX_pixels.npy  [3][S][S]      normalised input
       OUT_PREFIX_hidden.npy  [n_run+1][N][d] hidden_states[0..n_run] (0 = after pre-LN)
       OUT_PREFIX_tokens.npy  [P][d_out]      image tokens (the LM's input)
       OUT_PREFIX_att.npy     [n_run][H][N][N] post-softmax attention of every block
       OUT_PREFIX_tokens_clslast.npy          llama.cpp-graph variant: CLS after the patches
                                              (patch i gets position i, CLS position P)
       OUT_PREFIX_tokens_fewer.npy            variant: one block fewer than the rule says
and `--resample IMAGE OUT.png SIZE pad|crop` writes the u8 image the model sees (PIL).

Feature layer rule (documented in vision/vit.h): without clip.vision.feature_layer all
stored blocks run (the legacy converter already removed the unused last block); with it,
max(feature_layer) blocks run (hidden_states index f = after f blocks).
"""
import math
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_np import GGUF  # noqa: E402

torch.set_default_dtype(torch.float64)


# ---------------------------------------------------------------- preprocessing
def load_rgb(path):
    """RGB, upright per EXIF orientation (as HF load_image), alpha composited over
    white (our documented choice)."""
    im = ImageOps.exif_transpose(Image.open(path))
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        a = np.asarray(im, dtype=np.uint32)
        alpha = a[..., 3:4]
        rgb = (a[..., :3] * alpha + (255 - alpha) * 255 + 127) // 255
        return Image.fromarray(rgb.astype(np.uint8), "RGB")
    return im.convert("RGB")


def expand2square(img, fill):
    """LLaVA llava/mm_utils.py: paste centred on a square of the background colour."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), fill)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


def llamacpp_bicubic(a, tw, th):
    """llama.cpp tools/mtmd/mtmd-image.cpp img_tool::resize_bicubic, transcribed with
    the same float32/float64 mix (sample (tx j, ty i), tx = nx / tw; cubic a = -0.5 as
    finite differences; edge pixels repeated; round half away from zero)."""
    f32, f64 = np.float32, np.float64
    ny, nx, _ = a.shape
    A = a.astype(f32)
    tx, ty = f32(nx) / f32(tw), f32(ny) / f32(th)
    jx = (tx * np.arange(tw, dtype=f32)).astype(f32)
    iy = (ty * np.arange(th, dtype=f32)).astype(f32)
    x, y = jx.astype(np.int64), iy.astype(np.int64)
    dx, dy = (jx - x.astype(f32)).astype(f32), (iy - y.astype(f32)).astype(f32)

    def coef(d0, d2, d3):
        a1 = (-1.0 / 3 * d0.astype(f64) + d2.astype(f64) - 1.0 / 6 * d3.astype(f64)).astype(f32)
        a2 = (1.0 / 2 * d0.astype(f64) + 1.0 / 2 * d2.astype(f64)).astype(f32)
        a3 = (-1.0 / 6 * d0.astype(f64) - 1.0 / 2 * d2.astype(f64) + 1.0 / 6 * d3.astype(f64)).astype(f32)
        return a1, a2, a3

    def cubic(a0, a1, a2, a3, t):
        return (a0 + a1 * t + a2 * t * t + a3 * t * t * t).astype(f32)

    cols = [np.clip(x + o, 0, nx - 1) for o in (-1, 0, 1, 2)]
    C = []
    for jj in range(4):
        rows = np.clip(y - 1 + jj, 0, ny - 1)
        p = [A[rows][:, c] for c in cols]                      # each (th, tw, 3)
        d0, d2, d3 = p[0] - p[1], p[2] - p[1], p[3] - p[1]
        a1, a2, a3 = coef(d0, d2, d3)
        C.append(cubic(p[1], a1, a2, a3, dx[None, :, None]))
    d0, d2, d3 = C[0] - C[1], C[2] - C[1], C[3] - C[1]
    a1, a2, a3 = coef(d0, d2, d3)
    Cc = cubic(C[1], a1, a2, a3, dy[:, None, None])
    r = np.sign(Cc) * np.floor(np.abs(Cc.astype(f64)) + 0.5)
    return np.clip(r, 0, 255).astype(np.uint8)


def model_image(img, S, pipeline, mean):
    if pipeline == "llamacpp":
        fill = tuple(int(x * 255) for x in mean)
        w, h = img.size
        if (w, h) == (S, S):
            return img
        f32 = np.float32
        scale = min(f32(S) / f32(w), f32(S) / f32(h))
        nw = min(int(np.ceil(f32(w) * scale)), S)
        nh = min(int(np.ceil(f32(h) * scale)), S)
        r = llamacpp_bicubic(np.asarray(img), nw, nh)
        out = np.empty((S, S, 3), np.uint8)
        out[:] = fill
        ox, oy = (S - nw) // 2, (S - nh) // 2
        out[oy:oy + nh, ox:ox + nw] = r
        return Image.fromarray(out, "RGB")
    if pipeline == "pad":
        fill = tuple(int(x * 255) for x in mean)
        sq = expand2square(img, fill)
        # CLIPImageProcessor on a square image: shortest edge -> S is (S, S), crop is a no-op
        return sq.resize((S, S), Image.BICUBIC) if sq.size != (S, S) else sq
    # HF CLIPImageProcessor: resize shortest edge (get_resize_output_image_size,
    # default_to_square=False), then center_crop
    w, h = img.size
    if w <= h:
        nw, nh = S, int(S * h / w)
    else:
        nw, nh = int(S * w / h), S
    r = img.resize((nw, nh), Image.BICUBIC) if (nw, nh) != (w, h) else img
    top, left = (nh - S) // 2, (nw - S) // 2
    return r.crop((left, top, left + S, top + S))


def normalise(img, mean, std):
    x = np.asarray(img, dtype=np.float64) / 255.0
    x = (x - np.array(mean)) / np.array(std)
    return x.transpose(2, 0, 1).copy()


# ---------------------------------------------------------------- model
class VisionRef:
    def __init__(self, path):
        g = GGUF(path)
        kv = g.kv
        assert kv["general.architecture"] == "clip"
        assert kv["clip.projector_type"] == "mlp"
        self.S = kv["clip.vision.image_size"]
        self.p = kv["clip.vision.patch_size"]
        self.d = kv["clip.vision.embedding_length"]
        self.ff = kv["clip.vision.feed_forward_length"]
        self.H = kv["clip.vision.attention.head_count"]
        self.eps = kv["clip.vision.attention.layer_norm_epsilon"]
        self.n_stored = kv["clip.vision.block_count"]
        self.use_gelu = bool(kv.get("clip.use_gelu", False))
        self.mean = list(kv["clip.vision.image_mean"])
        self.std = list(kv["clip.vision.image_std"])
        fl = kv.get("clip.vision.feature_layer")
        self.n_run = max(fl) if fl else self.n_stored
        T = lambda name: torch.from_numpy(g.get(name).astype(np.float64))
        self.patch_w = T("v.patch_embd.weight")            # (d, 3, p, p)
        self.cls = T("v.class_embd")
        self.pos = T("v.position_embd.weight")             # (N, d)
        self.pre = (T("v.pre_ln.weight"), T("v.pre_ln.bias"))
        self.blocks = []
        for i in range(self.n_stored):
            b = {}
            for k in ("attn_q", "attn_k", "attn_v", "attn_out"):
                b[k] = (T(f"v.blk.{i}.{k}.weight"), T(f"v.blk.{i}.{k}.bias"))
            for k in ("ln1", "ln2"):
                b[k] = (T(f"v.blk.{i}.{k}.weight"), T(f"v.blk.{i}.{k}.bias"))
            up = (T(f"v.blk.{i}.ffn_up.weight"), T(f"v.blk.{i}.ffn_up.bias"))
            down = (T(f"v.blk.{i}.ffn_down.weight"), T(f"v.blk.{i}.ffn_down.bias"))
            # fc1 is (ff, d) in PyTorch layout; older files swap the names
            if up[0].shape == (self.d, self.ff) and self.ff != self.d:
                up, down = down, up
            b["fc1"], b["fc2"] = up, down
            self.blocks.append(b)
        self.mm0 = (T("mm.0.weight"), T("mm.0.bias"))
        self.mm2 = (T("mm.2.weight"), T("mm.2.bias"))

    def act(self, x):
        if self.use_gelu:
            return torch.nn.functional.gelu(x)
        return x * torch.sigmoid(1.702 * x)            # CLIP quick_gelu

    def layer(self, x, b, att_out=None):
        # HF CLIPEncoderLayer (pre-LN) with CLIPAttention (scale hd^-0.5, no mask)
        N, d = x.shape
        hd = d // self.H
        h = torch.nn.functional.layer_norm(x, (d,), *b["ln1"], eps=self.eps)
        q = torch.nn.functional.linear(h, *b["attn_q"]) * hd ** -0.5
        k = torch.nn.functional.linear(h, *b["attn_k"])
        v = torch.nn.functional.linear(h, *b["attn_v"])
        q, k, v = (t.view(N, self.H, hd).transpose(0, 1) for t in (q, k, v))
        p = torch.softmax(q @ k.transpose(1, 2), dim=-1)
        if att_out is not None:
            att_out.append(p)
        a = p @ v
        a = a.transpose(0, 1).reshape(N, d)
        x = x + torch.nn.functional.linear(a, *b["attn_out"])
        h = torch.nn.functional.layer_norm(x, (d,), *b["ln2"], eps=self.eps)
        x = x + torch.nn.functional.linear(self.act(torch.nn.functional.linear(h, *b["fc1"])), *b["fc2"])
        return x

    def forward(self, pixels, cls_last=False, n_run=None, att=None):
        n_run = self.n_run if n_run is None else n_run
        x = torch.from_numpy(pixels)[None]
        patches = torch.nn.functional.conv2d(x, self.patch_w, stride=self.p)   # (1, d, g, g)
        patches = patches.flatten(2)[0].transpose(0, 1)                         # (P, d), row-major grid
        if cls_last:
            x = torch.cat([patches, self.cls[None]], 0) + self.pos
        else:
            x = torch.cat([self.cls[None], patches], 0) + self.pos
        x = torch.nn.functional.layer_norm(x, (self.d,), *self.pre, eps=self.eps)
        hidden = [x]
        for i in range(n_run):
            x = self.layer(x, self.blocks[i], att)
            hidden.append(x)
        feat = x[:-1] if cls_last else x[1:]
        h = torch.nn.functional.gelu(torch.nn.functional.linear(feat, *self.mm0))   # erf GELU
        tokens = torch.nn.functional.linear(h, *self.mm2)
        return torch.stack(hidden), tokens


def main(argv):
    if len(argv) >= 2 and argv[1] == "--resample":
        _, _, src, out, size, pipeline = argv[:6]
        mean = [0.48145466, 0.4578275, 0.40821073]
        model_image(load_rgb(src), int(size), pipeline, mean).save(out)
        return 0
    if len(argv) < 4:
        print(__doc__)
        return 2
    path, image, prefix = argv[1:4]
    pipeline = "pad"
    if "--pipeline" in argv:
        pipeline = argv[argv.index("--pipeline") + 1]
    m = VisionRef(path)
    img = model_image(load_rgb(image), m.S, pipeline, m.mean)
    pixels = normalise(img, m.mean, m.std)
    with torch.no_grad():
        att = []
        hidden, tokens = m.forward(pixels, att=att)
        _, t_clslast = m.forward(pixels, cls_last=True)
        _, t_fewer = m.forward(pixels, n_run=m.n_run - 1)
    f32 = lambda t: np.ascontiguousarray(np.asarray(t, dtype=np.float32))
    np.save(prefix + "_pixels.npy", f32(pixels))
    np.save(prefix + "_hidden.npy", f32(hidden.numpy()))
    np.save(prefix + "_tokens.npy", f32(tokens.numpy()))
    np.save(prefix + "_att.npy", f32(torch.stack(att).numpy()))
    np.save(prefix + "_tokens_clslast.npy", f32(t_clslast.numpy()))
    np.save(prefix + "_tokens_fewer.npy", f32(t_fewer.numpy()))
    rel = lambda a, b: float((a - b).abs().max() / b.abs().max())
    print(f"{prefix}: pipeline {pipeline}, S {m.S}, blocks run {m.n_run}/{m.n_stored}, tokens {tuple(tokens.shape)}, "
          f"max|tokens| {float(tokens.abs().max()):.4g}, rel diff vs CLS-last {rel(t_clslast, tokens):.3g}, "
          f"vs one block fewer {rel(t_fewer, tokens):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
