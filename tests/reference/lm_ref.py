#!/usr/bin/python3
"""lm_ref.py - reference LLaMA forward (HF LlamaForCausalLM equations) on a GGUF LM.

Written from transformers' modeling_llama.py equations, in float64 PyTorch:
  RMSNorm    x * rsqrt(mean(x^2) + eps) * w
  RoPE       HF rotate_half on the HF row layout: q*cos + rotate_half(q)*sin with
             inv_freq = base^(-arange(0, d, 2)/d), cos/sin = cat(freqs, freqs)
  attention  softmax(q k^T / sqrt(hd) + causal mask) v, GQA by repeat_kv
  MLP        down(silu(gate(x)) * up(x))
  head       lm_head(norm(x)); lm_head = embed_tokens when output.weight is absent.

The GGUF stores q/k rows permuted by convert_hf_to_gguf.py's
    permute(w, n_head) = w.reshape(n_head, 2, hd//2, in).swapaxes(1, 2).reshape(w.shape)
(k with n_head = head_count_kv), which interleaves the two halves so rotary pairs become
adjacent rows. We invert it (reshape(n_head, hd//2, 2, in).swapaxes(1, 2)) to get the HF
layout back, so this script is independent of the C code's RoPE convention.
Quantized tensors are dequantized by gguf_np.py (the reference runs on the dequantized
weights).

Usage: lm_ref.py MODEL.gguf OUT_PREFIX [--n-prompt N] [--n-greedy G] [--seed S]
Writes OUT_PREFIX.{prompt,logits,splice_ids,splice_embd,splice_logits,greedy,
greedy_logits}.npy:
  prompt        int32 [N] random ids, first = 1 (a BOS stand-in)
  logits        f32 [N][V] logits at every prompt position
  splice_ids    int32 [N] the prompt with a run of -1 slots (image rows) in the middle
  splice_embd   f32 [K][D] the rows filling the slots (random, embedding scale)
  splice_logits f32 [N][V]
  greedy        int32 [G] greedy continuation of the plain prompt
  greedy_logits f32 [G][V] logits that chose each greedy token (row 0 = last prompt row)
and prints the smallest top-1/top-2 logit margin seen along the greedy path.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_np import GGUF  # noqa: E402


def unpermute(w, n_head):
    rows, cols = w.shape
    hd = rows // n_head
    return w.reshape(n_head, hd // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


class RefLlama:
    def __init__(self, path):
        g = GGUF(path)
        kv = g.kv
        assert kv["general.architecture"] == "llama"
        self.dim = int(kv["llama.embedding_length"])
        self.n_layer = int(kv["llama.block_count"])
        self.n_head = int(kv["llama.attention.head_count"])
        self.n_kv = int(kv.get("llama.attention.head_count_kv", self.n_head))
        self.hd = self.dim // self.n_head
        self.n_rot = int(kv.get("llama.rope.dimension_count", self.hd))
        assert self.n_rot == self.hd, "HF LLaMA rotates the whole head"
        self.eps = float(kv.get("llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.base = float(kv.get("llama.rope.freq_base", 10000.0))

        def t(name):
            return torch.from_numpy(np.asarray(g.get(name), dtype=np.float64))

        self.embed = t("token_embd.weight")
        self.n_vocab = self.embed.shape[0]
        self.lm_head = t("output.weight") if g.has("output.weight") else self.embed
        self.norm = t("output_norm.weight")
        self.layers = []
        for l in range(self.n_layer):
            p = f"blk.{l}."
            self.layers.append(dict(
                attn_norm=t(p + "attn_norm.weight"),
                q=torch.from_numpy(unpermute(np.asarray(g.get(p + "attn_q.weight"), np.float64), self.n_head)),
                k=torch.from_numpy(unpermute(np.asarray(g.get(p + "attn_k.weight"), np.float64), self.n_kv)),
                v=t(p + "attn_v.weight"), o=t(p + "attn_output.weight"),
                ffn_norm=t(p + "ffn_norm.weight"), gate=t(p + "ffn_gate.weight"),
                up=t(p + "ffn_up.weight"), down=t(p + "ffn_down.weight")))

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def forward(self, x):
        """x: [N][D] input embeddings at positions 0..N-1 -> logits [N][V]."""
        n = x.shape[0]
        hd, nh, nkv = self.hd, self.n_head, self.n_kv
        inv_freq = 1.0 / (self.base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        freqs = torch.outer(torch.arange(n, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None], emb.sin()[None]  # [1][N][hd]
        mask = torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)
        for L in self.layers:
            h = self.rmsnorm(x, L["attn_norm"])
            q = (h @ L["q"].T).view(n, nh, hd).transpose(0, 1)
            k = (h @ L["k"].T).view(n, nkv, hd).transpose(0, 1)
            v = (h @ L["v"].T).view(n, nkv, hd).transpose(0, 1)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            rep = nh // nkv
            k = k.repeat_interleave(rep, dim=0)
            v = v.repeat_interleave(rep, dim=0)
            att = torch.softmax(q @ k.transpose(1, 2) / np.sqrt(hd) + mask, dim=-1)
            z = (att @ v).transpose(0, 1).reshape(n, nh * hd)
            x = x + z @ L["o"].T
            h = self.rmsnorm(x, L["ffn_norm"])
            x = x + (torch.nn.functional.silu(h @ L["gate"].T) * (h @ L["up"].T)) @ L["down"].T
        return self.rmsnorm(x, self.norm) @ self.lm_head.T

    def embed_ids(self, ids, rows=None):
        out = torch.zeros(len(ids), self.dim, dtype=torch.float64)
        r = 0
        for i, t in enumerate(ids):
            if t >= 0:
                out[i] = self.embed[t]
            else:
                out[i] = torch.from_numpy(rows[r].astype(np.float64))
                r += 1
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--n-prompt", type=int, default=12)
    ap.add_argument("--n-greedy", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    m = RefLlama(a.model)
    rng = np.random.default_rng(a.seed)
    n = a.n_prompt
    prompt = rng.integers(2, m.n_vocab, size=n).astype(np.int32)
    prompt[0] = 1
    with torch.no_grad():
        logits = m.forward(m.embed_ids(prompt)).numpy()
        k0, k1 = n // 4, n // 4 + max(1, n // 3)
        splice_ids = prompt.copy()
        splice_ids[k0:k1] = -1
        splice_embd = rng.standard_normal((k1 - k0, m.dim)).astype(np.float32)
        splice_logits = m.forward(m.embed_ids(splice_ids, splice_embd)).numpy()
        seq = list(prompt)
        greedy, greedy_logits, margin = [], [], float("inf")
        for _ in range(a.n_greedy):
            lg = m.forward(m.embed_ids(seq)).numpy()[-1]
            top = np.sort(lg)[-2:]
            margin = min(margin, top[1] - top[0])
            tok = int(np.argmax(lg))
            greedy.append(tok)
            greedy_logits.append(lg)
            seq.append(tok)
    np.save(a.out + ".prompt.npy", prompt)
    np.save(a.out + ".logits.npy", logits.astype(np.float32))
    np.save(a.out + ".splice_ids.npy", splice_ids)
    np.save(a.out + ".splice_embd.npy", splice_embd)
    np.save(a.out + ".splice_logits.npy", splice_logits.astype(np.float32))
    np.save(a.out + ".greedy.npy", np.array(greedy, dtype=np.int32))
    np.save(a.out + ".greedy_logits.npy", np.array(greedy_logits, dtype=np.float32))
    print(f"{a.model}: vocab {m.n_vocab}, dim {m.dim}, layers {m.n_layer}, heads {m.n_head}/{m.n_kv}; "
          f"greedy {greedy}; min top-2 margin {margin:.4f}")


if __name__ == "__main__":
    main()
