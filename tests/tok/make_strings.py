#!/usr/bin/python3
"""Writes the conformance test strings (tests/tok/strings.txt), one per line, to stdout.

Deterministic. Lines never contain '\n' or '\r' (spm_encode reads one string per
line); the newline case is a unit test in tests/test_tok.c. Categories: corpus lines,
random slices of them (leading/trailing spaces, cut words), whitespace patterns,
digit runs, random character soup mixing trained characters with scripts absent from
the corpus (Cyrillic, Greek, Devanagari, Hangul, Arabic, Thai, rare emoji: byte
fallback), the empty string, literal U+2581, and a few long lines.
"""
import os
import random
import sys

# The committed strings.txt uses seed 7; tests/cli/tok_conformance.sh draws another set.
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
here = os.path.dirname(os.path.abspath(__file__))
corpus = open(os.path.join(here, "corpus.txt"), encoding="utf-8").read().split("\n")
corpus = [c for c in corpus if c]

out = ["", " ", "  ", "   ", "\t", " \t", "\t ", "a", " a", "a ", "  a", "a  ", " a ", "a b", "a  b",
       "a   b", "a\tb", "a \t b", "\u2581", "\u2581a", "a\u2581b", " \u2581 ", "0", "00", "123", " 1 2 3 ",
       "3.14159", "1,000,000", "hello", "Hello world", "hello  world  ", "café", "naïve café",
       "我们", "😀", "🦙🦙", "a😀b", "Привет", "Ωμέγα", "नमस्ते", "안녕하세요", "مرحبا", "สวัสดี",
       "\x01\x02\x7f", "~!@#$%^&*()_+`-=[]{}|;':\",./<>?"]

ASCII = [chr(c) for c in range(0x20, 0x7f)]
SEEN = list("éèêëàâäçñöüßåøæœÉÅØÆ") + list("我们今天天气学习语言模型图像问题答案日本語ひらがなカタカナ") + ["😀", "🚀", "🎉", "🦙"]
UNSEEN = list("Привет мир Ωμέγα δέλτα नमस्ते 안녕하세요 مرحبا สวัสดี ℵ∑∫√≈≠ ☃☂♞♠") + ["🧬", "🪐", "🫠", "🏳️‍🌈", "👩‍👩‍👧", "\u00ad", "\ufeff", "\U0010fffd", "\u0300"]
WS = [" ", "  ", "\t", "   ", " \t"]


def slice_of(s):
    a = rng.randrange(len(s))
    b = rng.randrange(a, min(len(s), a + 60) + 1)
    return s[a:b]


for _ in range(1500):
    out.append(rng.choice(corpus))
for _ in range(1200):
    out.append(slice_of(rng.choice(corpus)))
for _ in range(400):
    words = [rng.choice(["a", "the", "cat", "x", "1", "42", "é", "我", "🚀"]) for _ in range(rng.randrange(1, 5))]
    s = rng.choice(WS + [""])
    for w in words:
        s += w + rng.choice(WS)
    out.append(s if rng.random() < 0.5 else s.rstrip(" \t"))
for _ in range(300):
    out.append("".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 20))) +
               rng.choice(["", " ", ".5", "%", " kg", "th"]))
for _ in range(600):
    pool = rng.choice([ASCII, ASCII + SEEN, ASCII + UNSEEN, SEEN + UNSEEN, UNSEEN])
    out.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 40))))
for _ in range(20):
    out.append(" ".join(rng.choice(corpus) for _ in range(rng.randrange(5, 30))))
for s in out:
    assert "\n" not in s and "\r" not in s
print("\n".join(out))
