"""Builds the offline English training corpus of bench/embeddings.py, deterministically.

    python bench/embeddings_corpus.py [--out /tmp/fastrnn_emb_corpus.txt] [--tokens 3000000]

Sources, in this order, until --tokens tokens: Python's pydoc topics (pydoc_data), gensim's
test corpora (lee_background.cor, lee.cor, head500.noblanks.cor, pang_lee_polarity.cor, when gensim
is installed), Debian's fortunes (if installed), then the English manual pages under
/usr/share/man/man[1-8] in sorted order with the roff markup stripped. Text is lowercased and
split into words ([a-z]+, with inner apostrophes and digits as words of their own); one sentence
per output line, at most 100 words (longer ones are cut; pieces under 3 words are dropped). Prints the token count, the number of
sentences and the SHA-256 of the file, so two machines can check that they train on the same text.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import os
import re

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+")
ROFF_ESCAPE = re.compile(
    r"\\f[BIRP1-4]|\\f\(..|\\f\[[^\]]*\]|\\\(..|\\\[[^\]]*\]|\\[-&e|^0 ]|\\\*.|\\s[+-]?\d"
)


def pydoc_topics() -> list[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return []
    return [topics[k] for k in sorted(topics)]


def gensim_corpora() -> list[str]:
    try:
        from gensim.test.utils import datapath
    except ImportError:
        return []
    out = []
    for name in ("lee_background.cor", "lee.cor", "head500.noblanks.cor", "pang_lee_polarity.cor"):
        p = datapath(name)
        if os.path.exists(p):
            with open(p, encoding="utf8", errors="replace") as f:
                out.append(f.read().replace("__label__pos", "").replace("__label__neg", ""))
    return out


def fortunes() -> list[str]:
    out = []
    for p in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.isfile(p) and not p.endswith(".dat") and not os.path.islink(p):
            with open(p, encoding="utf8", errors="replace") as f:
                out.append(f.read().replace("\n%\n", "\n"))
    return out


def man_pages() -> list[str]:
    """Yields the text of each English manual page (roff requests dropped, escapes removed)."""
    for p in sorted(glob.glob("/usr/share/man/man[1-8]/*")):
        if not os.path.isfile(p):
            continue
        try:
            raw = gzip.open(p).read() if p.endswith(".gz") else open(p, "rb").read()
        except OSError:
            continue
        lines = []
        for line in raw.decode("utf8", errors="replace").splitlines():
            if line.startswith((".", "'")):
                # keep the text of font/heading macros (.B word, .SH NAME), drop other requests
                m = re.match(r"\.(?:B|I|BR|BI|IR|IB|RB|RI|SH|SS|TP|IP)\s+(.*)", line)
                if not m:
                    continue
                line = m.group(1).replace('"', " ")
            lines.append(ROFF_ESCAPE.sub(" ", line))
        yield "\n".join(lines)


def sentences(text: str):
    # paragraphs joined, then cut at sentence ends
    for para in re.split(r"\n\s*\n", text):
        for sent in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
            words = WORD.findall(sent.lower())
            # run-on "sentences" (tables, option lists) are cut into lines of at most 100 words,
            # so that no library's sentence-length cap (gensim's 10000) drops text
            for k in range(0, len(words), 100):
                if len(words[k : k + 100]) >= 3:
                    yield words[k : k + 100]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/fastrnn_emb_corpus.txt")
    ap.add_argument("--tokens", type=int, default=3_000_000)
    args = ap.parse_args()
    n_tok = n_sent = 0
    h = hashlib.sha256()

    def texts():
        yield from pydoc_topics()
        yield from gensim_corpora()
        yield from fortunes()
        yield from man_pages()

    with open(args.out, "w", encoding="utf8") as f:
        for text in texts():
            for s in sentences(text):
                line = " ".join(s) + "\n"
                f.write(line)
                h.update(line.encode())
                n_tok += len(s)
                n_sent += 1
                if n_tok >= args.tokens:
                    break
            if n_tok >= args.tokens:
                break
    print(f"{args.out}: {n_tok} tokens, {n_sent} sentences, sha256 {h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
