#!/usr/bin/python3
"""lm_llava_ref.py - end-to-end LLaVA reference: image -> vision_ref.VisionRef (HF CLIP +
projector, PIL preprocessing) -> image tokens spliced into the prompt -> lm_ref.RefLlama
(HF LLaMA equations), all float64.

    lm_llava_ref.py LM.gguf MMPROJ.gguf IMAGE IDS.npy OUT_PREFIX [--pipeline pad|crop] [--n-greedy G]
                    [--question Q --bin LLAVA_MECH]

IDS.npy: int32 prompt ids with -1 in the image slots (as tpl_build writes them). With
--question and --bin it is first written from `llava-mech tokenize --template llava
--image-tokens N --ids Q` (N = (image_size/patch_size)^2 of the mmproj), so the
tokenizer is not re-implemented here (the C test checks that llava_build_prompt
reproduces these ids). Writes
  OUT_PREFIX.first_logits.npy  f32 [V]  logits at the last prompt position
  OUT_PREFIX.greedy.npy        int32 [<= G] greedy answer (stops after EOS id 2 or the
                               tokenizer.ggml.eos_token_id of the file; EOS excluded)
  OUT_PREFIX.greedy_logits.npy f32 [len][V]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_np import GGUF  # noqa: E402
from lm_ref import RefLlama  # noqa: E402
from vision_ref import VisionRef, load_rgb, model_image, normalise  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lm")
    ap.add_argument("mmproj")
    ap.add_argument("image")
    ap.add_argument("ids")
    ap.add_argument("out")
    ap.add_argument("--pipeline", default="pad")
    ap.add_argument("--n-greedy", type=int, default=8)
    ap.add_argument("--question")
    ap.add_argument("--bin")
    a = ap.parse_args()
    if a.question:
        import subprocess
        kv = GGUF(a.mmproj).kv
        n_img = (int(kv["clip.vision.image_size"]) // int(kv["clip.vision.patch_size"])) ** 2
        out = subprocess.run([a.bin, "tokenize", "-m", a.lm, "--template", "llava", "--image-tokens", str(n_img),
                              "--ids", a.question], check=True, capture_output=True, text=True).stdout
        np.save(a.ids, np.array([int(t) for t in out.splitlines()[0].split()], dtype=np.int32))
    torch.set_default_dtype(torch.float64)
    v = VisionRef(a.mmproj)
    lm = RefLlama(a.lm)
    eos = int(GGUF(a.lm).kv.get("tokenizer.ggml.eos_token_id", 2))
    ids = np.load(a.ids).astype(np.int64)
    with torch.no_grad():
        img = model_image(load_rgb(a.image), v.S, a.pipeline, v.mean)
        _, tokens = v.forward(normalise(img, v.mean, v.std))
        rows = tokens.numpy()
        assert (ids == -1).sum() == rows.shape[0], "image slots vs image tokens"
        seq = list(ids)
        greedy, glog = [], []
        for _ in range(a.n_greedy):
            lg = lm.forward(lm.embed_ids(seq, rows)).numpy()[-1]
            glog.append(lg)
            t = int(np.argmax(lg))
            if t == eos:
                break
            greedy.append(t)
            seq.append(t)
    np.save(a.out + ".first_logits.npy", glog[0].astype(np.float32))
    np.save(a.out + ".greedy.npy", np.array(greedy, dtype=np.int32))
    np.save(a.out + ".greedy_logits.npy", np.array(glog[:len(greedy)], dtype=np.float32).reshape(-1, lm.n_vocab))
    top = np.sort(glog[0])[-2:]
    print(f"{a.out}: prompt {len(ids)} ids, greedy {greedy}, first-step top-2 margin {top[1] - top[0]:.4f}")


if __name__ == "__main__":
    main()
