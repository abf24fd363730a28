#!/usr/bin/python3
"""Writes the tokenizer conformance corpus (tests/tok/corpus.txt) to stdout.

Deterministic (fixed seed) and original: sentences are assembled from small word lists
written for this project, so no third-party text is copied. The mix exercises what a
LLaMA-style SentencePiece vocabulary meets: English prose, Latin accents, CJK, emoji,
digits (split one per piece by --split_digits), code, and whitespace runs and tabs.
"""
import random

rng = random.Random(20261125)

NOUNS = """cat dog river mountain window garden teacher student engine bridge forest city
market letter picture camera window kitchen ocean island storm planet rocket cloud
machine network signal pattern shadow circle square triangle diamond object image
answer question model token layer vector matrix colour color shape position number
morning evening winter summer library museum station harbour village castle tower
painter writer doctor farmer sailor pilot baker singer dancer child friend neighbour
apple orange lemon bread cheese coffee tea water stone sand glass paper metal wood""".split()
VERBS = """sees finds builds paints reads writes carries follows watches moves opens closes
draws counts measures explains answers asks teaches learns visits crosses climbs
holds keeps leaves brings sends takes makes gives shows tells covers fills""".split()
ADJS = """red green blue yellow purple orange small large bright dark quiet loud old new
young quick slow warm cold heavy light tall short round sharp soft hard early late
curious careful gentle strange simple complex happy tired busy empty full""".split()
ADVS = """quickly slowly quietly carefully often rarely always never gently suddenly""".split()
PREPS = """on under near behind beside above below inside across through over between""".split()
DETS = ["the", "a", "every", "one", "that", "this", "some", "no"]
NAMES = ["Alice", "Bruno", "Chloé", "Dmitri", "Émile", "Fatima", "Günter", "Hana", "Ines",
         "José", "Kai", "Léa", "Mårten", "Noémie", "Øystein", "Paolo", "Renée", "Søren", "Zoë"]
ACCENTED = """café naïve résumé façade über straße größer Mädchen año niño mañana corazón
élève théâtre forêt garçon déjà vu crème brûlée São Paulo Kraków Ærø smörgåsbord
piñata jalapeño coöperate façon señor Zürich Genève Besançon Ångström""".split()
CJK_WORDS = ["我们", "今天", "天气", "很好", "学习", "语言", "模型", "图像", "问题", "答案",
             "红色", "绿色", "蓝色", "圆形", "方形", "三角形", "东京", "日本語", "ひらがな",
             "カタカナ", "こんにちは", "ありがとう", "世界", "中文", "漢字", "山", "川", "水", "火"]
EMOJI = ["😀", "😂", "🚀", "🌍", "🎉", "👍", "🔥", "✨", "🍎", "🐱", "🐶", "❤️", "✅", "🦙"]
CODE = [
    "for (int i = 0; i < n; i++) sum += x[i];",
    "def area(r):\n    return 3.14159 * r * r",
    "if (err != NULL) { return -1; }",
    "x = [a + b for a, b in zip(xs, ys)]",
    "printf(\"%d tokens\\n\", count);",
    "#include <stdio.h>",
    "while (p->next) p = p->next;",
    "SELECT name, age FROM people WHERE age > 30;",
    "let mut v = Vec::with_capacity(16);",
    "return {\"id\": 42, \"ok\": true}",
    "git commit -m \"fix the tokenizer\"",
    "ls -la /tmp | grep log",
]


def number():
    k = rng.randrange(6)
    if k == 0:
        return str(rng.randrange(10))
    if k == 1:
        return str(rng.randrange(10, 1000))
    if k == 2:
        return f"{rng.randrange(1, 100000):,}"
    if k == 3:
        return f"{rng.uniform(0, 1000):.{rng.randrange(1, 4)}f}"
    if k == 4:
        return f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    return f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"


def noun_phrase():
    s = rng.choice(DETS)
    if rng.random() < 0.6:
        s += " " + rng.choice(ADJS)
    return s + " " + rng.choice(NOUNS)


def sentence():
    subj = rng.choice(NAMES) if rng.random() < 0.3 else noun_phrase()
    s = f"{subj} {rng.choice(VERBS)} {noun_phrase()}"
    if rng.random() < 0.5:
        s += f" {rng.choice(PREPS)} {noun_phrase()}"
    if rng.random() < 0.3:
        s += " " + rng.choice(ADVS)
    if rng.random() < 0.25:
        s += f" at {number()}"
    s = s[0].upper() + s[1:]
    return s + rng.choice([".", ".", ".", "!", "?", ";", "..."])


def line():
    k = rng.random()
    if k < 0.45:
        return " ".join(sentence() for _ in range(rng.randrange(1, 4)))
    if k < 0.55:
        words = [rng.choice(ACCENTED) for _ in range(rng.randrange(2, 8))]
        return " ".join(words) + rng.choice([".", "!", ""])
    if k < 0.65:
        return "".join(rng.choice(CJK_WORDS) for _ in range(rng.randrange(2, 10))) + rng.choice(["。", "！", "？", ""])
    if k < 0.70:
        return sentence() + " " + " ".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 4)))
    if k < 0.78:
        return " ".join(number() for _ in range(rng.randrange(1, 6)))
    if k < 0.88:
        c = rng.choice(CODE).replace("\n", " ")
        return (" " * rng.choice([0, 2, 4, 8])) + c
    if k < 0.94:
        # whitespace runs and tabs inside and around text
        ws = lambda: rng.choice([" ", "  ", "   ", "\t", " \t ", "    "])
        return ws() + ws().join(rng.choice(NOUNS + ADJS) for _ in range(rng.randrange(2, 6))) + ws()
    return "Q: What " + rng.choice(["color", "shape"]) + " is the " + rng.choice(NOUNS) + "? A: " + rng.choice(ADJS)


out = []
size = 0
while size < 350_000:
    s = line()
    out.append(s)
    size += len(s.encode()) + 1
print("\n".join(out))
