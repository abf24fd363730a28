#!/usr/bin/python3
"""Golden forward outputs and autograd gradients for every op of core/ops.h.

Regenerate (Debian's torch 1.13, not the pyenv python):

    /usr/bin/python3 tests/reference/ops_grad.py tests/golden/ops

Each case draws float32 inputs (so C reads exactly the values torch used), computes in
float64 with torch autograd, using torch's own modules where one exists (F.layer_norm,
F.gelu, F.silu, F.conv2d, F.unfold, F.cross_entropy) and a literal transcription of
the definition otherwise (RMSNorm, RoPE in the GGUF adjacent-pair layout, GQA
attention with causal offset and additive bias), and writes NAME.npy files
(little-endian <f4 / <i4) read by tests/test_ops.c. The loss for every case is
sum(out * dout) with a random dout, so the stored gradients are vector-Jacobian
products with dout.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = None
RNG = np.random.default_rng(1234)


def rand(*shape, scale=1.0):
    return (RNG.uniform(-1.0, 1.0, size=shape) * scale).astype(np.float32)


def leaf(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def save(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    a = np.asarray(a)
    a = a.astype(np.int32 if a.dtype.kind in "iu" else np.float32)
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))


def backward(out, dout):
    (out * torch.tensor(dout, dtype=torch.float64)).sum().backward()


def case_layernorm():
    N, C, eps = 4, 24, 1e-5
    x = rand(N, C, scale=2.0) + 3.0
    w, b, dout = rand(C), rand(C), rand(N, C)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    out = F.layer_norm(tx, (C,), tw, tb, eps)
    backward(out, dout)
    for k, v in dict(x=x, w=w, b=b, dout=dout, out=out, dx=tx.grad, dw=tw.grad, db=tb.grad).items():
        save("layernorm." + k, v)


def case_rmsnorm():
    N, C, eps = 4, 24, 1e-6
    x, w, dout = rand(N, C, scale=2.0), rand(C), rand(N, C)
    tx, tw = leaf(x), leaf(w)
    out = tx * torch.rsqrt((tx * tx).mean(-1, keepdim=True) + eps) * tw
    backward(out, dout)
    for k, v in dict(x=x, w=w, dout=dout, out=out, dx=tx.grad, dw=tw.grad).items():
        save("rmsnorm." + k, v)


def case_linear():
    N, IN, OUTF = 5, 12, 7
    x, w, b, dout = rand(N, IN), rand(OUTF, IN), rand(OUTF), rand(N, OUTF)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    out = F.linear(tx, tw, tb)
    backward(out, dout)
    for k, v in dict(x=x, w=w, b=b, dout=dout, out=out, dx=tx.grad, dw=tw.grad, db=tb.grad).items():
        save("linear." + k, v)


def case_activations():
    n = 64
    for name, fn in (("gelu", lambda t: F.gelu(t)), ("quick_gelu", lambda t: t * torch.sigmoid(1.702 * t))):
        x, dout = rand(n, scale=5.0), rand(n)
        tx = leaf(x)
        out = fn(tx)
        backward(out, dout)
        for k, v in dict(x=x, dout=dout, out=out, dx=tx.grad).items():
            save(name + "." + k, v)
    gate, up, dout = rand(n, scale=5.0), rand(n, scale=2.0), rand(n)
    tg, tu = leaf(gate), leaf(up)
    out = F.silu(tg) * tu
    backward(out, dout)
    for k, v in dict(gate=gate, up=up, dout=dout, out=out, dgate=tg.grad, dup=tu.grad).items():
        save("swiglu." + k, v)


def case_rope():
    # cfg: N, n_head, head_dim, n_rot, pos0; base separately (float)
    N, H, D, R, pos0, base = 5, 3, 8, 4, 7, 10000.0
    x, dout = rand(N, H * D), rand(N, H * D)
    tx = leaf(x)
    xr = tx.view(N, H, D)
    pos = torch.arange(pos0, pos0 + N, dtype=torch.float64)[:, None]
    inv = base ** (-torch.arange(0, R, 2, dtype=torch.float64) / R)
    th = (pos * inv)[:, None, :]  # [N][1][R/2]
    x0, x1 = xr[..., 0:R:2], xr[..., 1:R:2]
    y0 = x0 * torch.cos(th) - x1 * torch.sin(th)
    y1 = x0 * torch.sin(th) + x1 * torch.cos(th)
    rot = torch.stack((y0, y1), dim=-1).reshape(N, H, R)
    out = torch.cat((rot, xr[..., R:]), dim=-1).reshape(N, H * D)
    backward(out, dout)
    save("rope.cfg", [N, H, D, R, pos0])
    save("rope.base", [base])
    for k, v in dict(x=x, dout=dout, out=out, dx=tx.grad).items():
        save("rope." + k, v)


def attention_ref(q, k, v, Nq, Nk, H, KVH, hd, pos0, causal, bias):
    grp = H // KVH
    qh = q.view(Nq, H, hd).transpose(0, 1)  # [H][Nq][hd]
    kh = k.view(Nk, KVH, hd).transpose(0, 1).repeat_interleave(grp, dim=0)
    vh = v.view(Nk, KVH, hd).transpose(0, 1).repeat_interleave(grp, dim=0)
    s = qh @ kh.transpose(1, 2) / np.sqrt(hd)
    if bias is not None:
        s = s + torch.tensor(bias, dtype=torch.float64)[None]
    if causal:
        i = torch.arange(Nq)[:, None]
        j = torch.arange(Nk)[None, :]
        s = s.masked_fill((j > pos0 + i)[None], float("-inf"))
    dead = torch.isinf(s).all(-1, keepdim=True) & (s < 0).all(-1, keepdim=True)
    # Rows with no visible key: softmax would be 0/0; the contract gives zeros. Feed
    # finite scores there so autograd stays NaN-free, then zero the pattern.
    s = torch.where(dead, torch.zeros_like(s), s)
    p = torch.softmax(s, dim=-1)
    p = torch.where(dead, torch.zeros_like(p), p)
    p.retain_grad()  # dL/dA for ops_attention_bwd_att
    out = (p @ vh).transpose(0, 1).reshape(Nq, H * hd)
    return out, p


def case_attention(name, Nq, Nk, H, KVH, hd, pos0, causal, with_bias, dead_row=None):
    q, k, v = rand(Nq, H * hd, scale=1.5), rand(Nk, KVH * hd, scale=1.5), rand(Nk, KVH * hd)
    dout = rand(Nq, H * hd)
    bias = None
    if with_bias:
        bias = rand(Nq, Nk, scale=0.5)
        bias[1, 0] = -np.inf
        bias[Nq - 1, Nk // 2] = -np.inf
        if dead_row is not None:
            bias[dead_row, :] = -np.inf
    tq, tk, tv = leaf(q), leaf(k), leaf(v)
    out, p = attention_ref(tq, tk, tv, Nq, Nk, H, KVH, hd, pos0, causal, bias)
    backward(out, dout)
    save(name + ".cfg", [Nq, Nk, H, KVH, hd, pos0, int(causal), int(with_bias)])
    d = dict(q=q, k=k, v=v, dout=dout, out=out, att=p, dq=tq.grad, dk=tk.grad, dv=tv.grad, datt=p.grad)
    if with_bias:
        d["bias"] = bias
    for kk, vv in d.items():
        save(name + "." + kk, vv)


def case_embed():
    V, C = 10, 6
    table, dout = rand(V, C), rand(8, C)
    ids = np.array([3, 0, 9, 3, 5, 3, 0, 7], dtype=np.int32)
    tt = leaf(table)
    out = F.embedding(torch.tensor(ids, dtype=torch.long), tt)
    backward(out, dout)
    for k, v in dict(table=table, ids=ids, dout=dout, out=out, dtable=tt.grad).items():
        save("embed." + k, v)


def case_patchify():
    # Odd image sizes: the last rows/columns that do not fill a patch are dropped,
    # as by a stride = kernel conv without padding.
    H, W, ps, d = 13, 17, 4, 5
    img, weight = rand(3, H, W), rand(d, 3, ps, ps)
    gh, gw = H // ps, W // ps
    dout = rand(gh * gw, d)
    ti, tw = leaf(img), leaf(weight)
    conv = F.conv2d(ti[None], tw, stride=ps)[0]  # [d][gh][gw]
    out = conv.reshape(d, gh * gw).t()  # [P][d]
    backward(out, dout)
    patches = F.unfold(torch.tensor(img[None], dtype=torch.float64), kernel_size=ps, stride=ps)[0].t()
    save("patchify.cfg", [H, W, ps, d])
    for k, v in dict(img=img, weight=weight, dout=dout, patches=patches, out=out, dimg=ti.grad,
                     dweight=tw.grad).items():
        save("patchify." + k, v)


def case_xent():
    N, V, scale = 6, 17, 0.25
    logits = rand(N, V, scale=4.0)
    logits[2, 5] = 80.0
    target = np.array([3, -1, 0, 16, -100, 5], dtype=np.int32)
    tl = leaf(logits)
    keep = target >= 0
    tt = torch.tensor(np.where(keep, target, 0), dtype=torch.long)
    rows = F.cross_entropy(tl, tt, reduction="none") * torch.tensor(keep, dtype=torch.float64)
    (rows.sum() * scale).backward()
    save("xent.scale", [scale])
    ls = F.log_softmax(torch.tensor(logits, dtype=torch.float64), dim=-1)
    for k, v in dict(logits=logits, target=target, loss=rows, probs=ls.exp(), logsoftmax=ls,
                     total=[rows.sum().item()], dlogits=tl.grad).items():
        save("xent." + k, v)


def main():
    global OUT
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 tests/reference/ops_grad.py OUTDIR")
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    case_layernorm()
    case_rmsnorm()
    case_linear()
    case_activations()
    case_rope()
    # GQA, causal with query offset, bias with -inf entries and one fully masked row.
    case_attention("attn_gqa", Nq=6, Nk=9, H=4, KVH=2, hd=8, pos0=3, causal=True, with_bias=True, dead_row=2)
    # Plain multi-head, bidirectional (ViT), Nq != Nk.
    case_attention("attn_mha", Nq=5, Nk=11, H=3, KVH=3, hd=16, pos0=0, causal=False, with_bias=False)
    # More than one 64-row block of queries and keys (the C code tiles by 64).
    case_attention("attn_big", Nq=70, Nk=75, H=2, KVH=1, hd=16, pos0=5, causal=True, with_bias=False)
    case_embed()
    case_patchify()
    case_xent()


if __name__ == "__main__":
    main()
