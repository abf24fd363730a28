"""vision_images.py - deterministic photo-like test images for the vision goldens.

Smooth illumination gradients, blurred and sharp shapes, fine texture and sensor-like
noise: the mix of low and high frequencies that makes resampling errors visible.

    /usr/bin/python3 tests/reference/vision_images.py OUT_DIR
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([
        120 + 80 * np.sin(x / w * 3.1 + 0.3) * np.cos(y / h * 2.3),
        100 + 60 * (x / w) + 40 * (y / h),
        140 - 70 * np.cos((x + y) / (w + h) * 5.0),
    ], axis=-1)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(6):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.05, 0.25) * min(w, h)
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.uniform() < 0.5:
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
        else:
            d.rectangle([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], fill=col)
    img = img.filter(ImageFilter.GaussianBlur(radius=0.8))
    d = ImageDraw.Draw(img)
    for _ in range(4):  # sharp lines after the blur: high frequencies
        pts = [tuple(rng.uniform(0, [w, h])) for _ in range(2)]
        d.line(pts, fill=tuple(int(c) for c in rng.integers(0, 256, 3)), width=1)
    a = np.asarray(img, dtype=np.float64)
    a = a + rng.normal(0, 6, a.shape)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")


def main(out):
    os.makedirs(out, exist_ok=True)
    photo(160, 120, 1).save(os.path.join(out, "photo_160x120.png"))
    photo(45, 31, 2).save(os.path.join(out, "small_45x31.png"))
    photo(30, 41, 3).save(os.path.join(out, "portrait_30x41.png"))
    photo(600, 9, 6).save(os.path.join(out, "strip_600x9.png"))   # extreme aspect ratios
    photo(7, 300, 7).save(os.path.join(out, "strip_7x300.png"))
    # RGBA with a gradient alpha, to check compositing over white
    p = np.asarray(photo(20, 12, 4))
    alpha = np.tile(np.linspace(0, 255, 20).astype(np.uint8), (12, 1))[..., None]
    Image.fromarray(np.concatenate([p, alpha], -1), "RGBA").save(os.path.join(out, "alpha_20x12.png"))
    a = alpha.astype(np.uint32)
    white = (p.astype(np.uint32) * a + (255 - a) * 255 + 127) // 255
    Image.fromarray(white.astype(np.uint8), "RGB").save(os.path.join(out, "alpha_20x12_white.png"))
    # the same picture in every format the loader must read
    f = os.path.join(out, "formats")
    os.makedirs(f, exist_ok=True)
    src = photo(45, 31, 2)
    src.save(os.path.join(f, "small.bmp"))
    src.save(os.path.join(f, "small.tga"))
    src.save(os.path.join(f, "small.ppm"))
    src.convert("L").save(os.path.join(f, "small_gray.pgm"))
    src.convert("L").save(os.path.join(f, "small_gray.png"))
    src.save(os.path.join(f, "small.jpg"), quality=95)
    src.save(os.path.join(f, "small_prog.jpg"), quality=95, progressive=True)
    # what libjpeg (through PIL) decodes: stb's decoder must agree closely
    Image.open(os.path.join(f, "small.jpg")).convert("RGB").save(os.path.join(f, "small_jpg_decoded.png"))
    gif = src.quantize(64)
    gif.save(os.path.join(f, "small.gif"))
    gif.convert("RGB").save(os.path.join(f, "small_gif_decoded.png"))
    # EXIF orientation 1..8 on the same JPEG data; golden = PIL's exif_transpose
    from PIL import ImageOps
    base = photo(24, 16, 5)
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        jp = os.path.join(f, f"exif_{o}.jpg")
        base.save(jp, quality=95, exif=ex.tobytes())
        ImageOps.exif_transpose(Image.open(jp)).convert("RGB").save(os.path.join(f, f"exif_{o}_upright.png"))
    # animated GIF: three different frames; the loader must return the first, exactly
    # as PIL decodes frame 0
    frames = [photo(45, 31, 20 + i).quantize(32) for i in range(3)]
    frames[0].save(os.path.join(f, "anim3.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(os.path.join(f, "anim3.gif")) as anim:
        assert anim.n_frames == 3
        anim.seek(0)
        anim.convert("RGB").save(os.path.join(f, "anim3_frame0.png"))
        anim.seek(1)
        anim.convert("RGB").save(os.path.join(f, "anim3_frame1.png"))
    # gray + alpha (LA) and a palette with a transparent entry (tRNS): composited over
    # white like RGBA
    g = np.asarray(photo(20, 12, 8).convert("L"), dtype=np.uint32)[..., None]
    Image.fromarray(np.concatenate([g, alpha], -1).astype(np.uint8), "LA").save(os.path.join(out, "alpha_la_20x12.png"))
    al = alpha.astype(np.uint32)
    gw = (g * al + (255 - al) * 255 + 127) // 255
    Image.fromarray(np.repeat(gw, 3, -1).astype(np.uint8), "RGB").save(os.path.join(out, "alpha_la_20x12_white.png"))
    pal = photo(20, 12, 9).quantize(16)
    pal.info["transparency"] = 3
    pal.save(os.path.join(out, "alpha_pal_20x12.png"), transparency=3)
    rgba = np.asarray(Image.open(os.path.join(out, "alpha_pal_20x12.png")).convert("RGBA"), dtype=np.uint32)
    pa = rgba[..., 3:4]
    pw = (rgba[..., :3] * pa + (255 - pa) * 255 + 127) // 255
    Image.fromarray(pw.astype(np.uint8), "RGB").save(os.path.join(out, "alpha_pal_20x12_white.png"))
    # 16-bit PNG: stb reduces to 8 bits (v >> 8)
    a16 = (np.asarray(src.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(a16, "I;16").save(os.path.join(f, "small_gray16.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
