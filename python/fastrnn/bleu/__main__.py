"""Command line BLEU, like sacrebleu's:

    python -m fastrnn.bleu REF_FILE [REF_FILE ...] < HYP_FILE
    python -m fastrnn.bleu REF_FILE -i HYP_FILE [-tok intl] [-lc] [-s floor -sv 0.1] [-sl]

prints sacrebleu's score line with its signature, e.g.
"BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:fastrnn-0.1.0 = 30.2 61.1/36.0/..."
(sacrebleu's `--format text`; `-f json` gives its JSON). Files are read as sacrebleu reads them:
UTF-8 (see -e), one segment per line, trailing whitespace stripped; `.gz` files are decompressed.
Errors go to stderr with exit status 1 (2 for bad options).
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
from collections.abc import Sequence
from typing import IO

from . import corpus_bleu, sentence_bleu
from ._score import MAX_NGRAM_ORDER, SMOOTH_DEFAULTS
from .tokenizers import DEFAULT_TOKENIZER, TOKENIZERS


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(
        prog="python -m fastrnn.bleu",
        description="BLEU identical to sacrebleu's, computed by fastrnn. Reads hypotheses from "
        "standard input (or -i) and scores them against the reference files.",
    )
    p.add_argument("refs", nargs="+", metavar="REF_FILE", help="reference files, one per stream")
    p.add_argument("-i", "--input", metavar="HYP_FILE", help="read hypotheses from this file")
    p.add_argument(
        "-nr",
        "--num-refs",
        type=int,
        default=1,
        help="split each reference line on tabs into this many references (default: 1)",
    )
    p.add_argument("-e", "--encoding", default="utf-8", help="file encoding (default: utf-8)")
    p.add_argument("-tok", "--tokenize", choices=TOKENIZERS, default=DEFAULT_TOKENIZER)
    p.add_argument("-lc", "--lowercase", action="store_true", help="case-insensitive BLEU")
    p.add_argument("-s", "--smooth-method", choices=list(SMOOTH_DEFAULTS), default="exp")
    p.add_argument(
        "-sv",
        "--smooth-value",
        type=float,
        default=None,
        help="value for floor (default 0.1) and add-k (default 1)",
    )
    p.add_argument("--max-ngram-order", type=int, default=MAX_NGRAM_ORDER)
    p.add_argument("--force", action="store_true", help="do not warn about tokenized input")
    p.add_argument(
        "-sl",
        "--sentence-level",
        action="store_true",
        help="one score per line (with effective order, as sacrebleu does)",
    )
    p.add_argument("-w", "--width", type=int, default=1, help="decimals of the score (default: 1)")
    p.add_argument("-b", "--score-only", action="store_true", help="print the score alone")
    p.add_argument("-sh", "--short", action="store_true", help="short signature")
    p.add_argument("-f", "--format", choices=("text", "json"), default="text")
    p.add_argument("-V", "--version", action="version", version=f"fastrnn {__version__}")
    return p


def _open(path: str, encoding: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding, newline="\n")
    return open(path, encoding=encoding, newline="\n")


def _read(f: IO[str]) -> list[str]:
    return [line.rstrip() for line in f]


def _read_refs(paths: Sequence[str], num_refs: int, encoding: str) -> list[list[str]]:
    if num_refs == 1:
        streams = []
        for path in paths:
            with _open(path, encoding) as f:
                streams.append(_read(f))
        return streams
    if len(paths) != 1:
        raise ValueError("--num-refs: tab-separated references come in a single REF_FILE")
    streams = [[] for _ in range(num_refs)]
    with _open(paths[0], encoding) as f:
        for lineno, line in enumerate(_read(f), 1):
            fields = line.split("\t", num_refs - 1)
            if len(fields) != num_refs:
                raise ValueError(
                    f"{paths[0]}:{lineno}: expected {num_refs} tab-separated references, "
                    f"found {len(fields)}"
                )
            for stream, field in zip(streams, fields):
                stream.append(field)
    return streams


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.num_refs < 1:
            raise ValueError(f"--num-refs: expected a positive integer, got {args.num_refs}")
        refs = _read_refs(args.refs, args.num_refs, args.encoding)
        if args.input is not None:
            with _open(args.input, args.encoding) as f:
                hyps = _read(f)
        else:
            hyps = _read(io.TextIOWrapper(sys.stdin.buffer, encoding=args.encoding))
        for r, stream in enumerate(refs):
            if len(stream) != len(hyps):
                raise ValueError(
                    f"the hypotheses have {len(hyps)} lines but reference stream {r + 1} has "
                    f"{len(stream)}"
                )
        kwargs = dict(
            tokenize=args.tokenize,
            lowercase=args.lowercase,
            smooth_method=args.smooth_method,
            smooth_value=args.smooth_value,
            max_ngram_order=args.max_ngram_order,
        )
        out = sys.stdout
        if args.sentence_level:
            for i, hyp in enumerate(hyps):
                score = sentence_bleu(hyp, [s[i] for s in refs], effective_order=True, **kwargs)
                out.write(_line(score, args) + "\n")
        else:
            score = corpus_bleu(hyps, refs, force=args.force, **kwargs)
            out.write(_line(score, args) + "\n")
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as e:
        print(f"python -m fastrnn.bleu: error: {e}", file=sys.stderr)
        return 1
    return 0


def _line(score, args: argparse.Namespace) -> str:  # type: ignore[no-untyped-def]
    sig = score.signature
    if args.short and args.format != "json":
        sig = "|".join(_shorten(item) for item in sig.split("|"))
    return score.format(args.width, args.score_only, sig, is_json=args.format == "json")


_SHORT = {"nrefs": "#", "case": "c", "eff": "e", "tok": "tok", "smooth": "s", "version": "v"}


def _shorten(item: str) -> str:
    key, _, value = item.partition(":")
    return f"{_SHORT.get(key, key)}:{value}"


if __name__ == "__main__":
    sys.exit(main())
