"""Command line of fastrnn.distributed: one entry, four tasks, any Dask cluster.

    python -m fastrnn.distributed bleu -i HYP REF [REF ...] [-m bleu|chrf] [-tok 13a] [-f text]
    python -m fastrnn.distributed translate --model M.npz -i SRC [-o OUT] [--beam-size 4]
    python -m fastrnn.distributed perplexity --model M.npz|LM.arpa -i TEXT
    python -m fastrnn.distributed vectors V1.bin V2.bin ... --binary [--analogies F] [--pairs F ...]

Every task takes --scheduler ADDRESS (a running Dask scheduler, e.g. tcp://10.0.0.5:8786);
without it a local cluster of --workers processes is started for the run. HYP, REF, SRC and TEXT
may each be several files (shards, read in order): give a comma-separated list. Files are read by
the workers, so on a real cluster they must sit on a shared file system (or at the same path on
every machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import __version__


def _paths(arg: str) -> list[Path]:
    return [Path(p) for p in arg.split(",") if p]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastrnn.distributed",
        description="Corpus BLEU, beam-search translation and perplexity over shards on Dask.",
    )
    p.add_argument("-V", "--version", action="version", version=f"fastrnn {__version__}")
    sub = p.add_subparsers(dest="task", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="Dask scheduler address (default: start a local cluster)")  # fmt: skip
        q.add_argument("--workers", type=int, default=2, help="local cluster: worker processes")
        q.add_argument("--threads-per-worker", type=int, default=1, help="local cluster")
        q.add_argument("--shard-size", type=int, default=None, help="lines per task")
        q.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")

    b = sub.add_parser("bleu", help="corpus BLEU or chrF (fastrnn.bleu's, identical to sacrebleu)")
    b.add_argument("-m", "--metric", choices=("bleu", "chrf"), default="bleu")
    b.add_argument("-i", "--input", required=True, metavar="HYP", help="hypotheses")
    b.add_argument("refs", nargs="+", metavar="REF", help="reference streams")
    b.add_argument("-tok", "--tokenize", default="13a")
    b.add_argument("-lc", "--lowercase", action="store_true")
    b.add_argument("-s", "--smooth-method", default="exp")
    b.add_argument("--smooth-value", type=float, default=None)
    b.add_argument("--force", action="store_true")
    b.add_argument("-cc", "--chrf-char-order", type=int, default=6)
    b.add_argument("-cw", "--chrf-word-order", type=int, default=0)
    b.add_argument("--chrf-beta", type=int, default=2)
    b.add_argument("--chrf-whitespace", action="store_true")
    b.add_argument("--chrf-lowercase", action="store_true")
    b.add_argument("--chrf-eps-smoothing", action="store_true")
    b.add_argument("-w", "--width", type=int, default=1)
    b.add_argument("-f", "--format", choices=("text", "json"), default="json",
                   help="sacrebleu's JSON (default) or its score line")  # fmt: skip
    common(b)

    t = sub.add_parser("translate", help="beam search with a model of save_seq2seq")
    t.add_argument("--model", required=True)
    t.add_argument("-i", "--input", required=True, metavar="SRC")
    t.add_argument("-o", "--output", default=None, help="default: standard output")
    t.add_argument("--beam-size", type=int, default=4)
    t.add_argument("--max-len", type=int, default=100)
    t.add_argument("--alpha", type=float, default=0.0)
    t.add_argument("--batch-size", type=int, default=32)
    common(t)

    q = sub.add_parser("perplexity", help="perplexity of a saved neural LM or an ARPA n-gram LM")
    q.add_argument("--model", required=True)
    q.add_argument("-i", "--input", required=True, metavar="TEXT")
    q.add_argument("--batch-size", type=int, default=32)
    common(q)

    v = sub.add_parser(
        "vectors", help="evaluate word-vector files (word2vec format), one task each"
    )
    v.add_argument("files", nargs="+", metavar="VECTORS")
    v.add_argument("--binary", action="store_true", help="word2vec's binary format")
    v.add_argument("--analogies", default=None, help="a questions-words file")
    v.add_argument("--pairs", nargs="*", default=[], help="word-pair similarity files")
    v.add_argument("--restrict-vocab", type=int, default=300000)
    common(v)
    return p


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SystemExit('fastrnn.distributed: Dask is not installed (pip install '
                         '"fastrnn[distributed]")') from None  # fmt: skip
    if args.scheduler:
        with Client(args.scheduler, set_as_default=False) as c:
            yield c
        return
    with LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                      dashboard_address=":0") as cluster:  # fmt: skip
        with Client(cluster, set_as_default=False) as c:
            yield c


def main(argv: list[str] | None = None) -> int:
    from . import corpus_bleu, corpus_chrf, evaluate_vectors, perplexity, translate

    args = _parser().parse_args(argv)
    shard = {} if args.shard_size is None else {"shard_size": args.shard_size}
    try:
        with _client(args) as client:
            if args.task == "bleu":
                hyps, refs = _paths(args.input), [_paths(r) for r in args.refs]
                if args.metric == "bleu":
                    res: Any = corpus_bleu(hyps, refs, client, tokenize=args.tokenize,
                                           lowercase=args.lowercase,
                                           smooth_method=args.smooth_method,
                                           smooth_value=args.smooth_value, force=args.force,
                                           timeout=args.timeout, **shard)  # fmt: skip
                else:
                    res = corpus_chrf(hyps, refs, client, char_order=args.chrf_char_order,
                                      word_order=args.chrf_word_order, beta=args.chrf_beta,
                                      lowercase=args.chrf_lowercase,
                                      whitespace=args.chrf_whitespace,
                                      eps_smoothing=args.chrf_eps_smoothing,
                                      timeout=args.timeout, **shard)  # fmt: skip
                # what python -m fastrnn.bleu prints for the same files and options
                print(res.format(args.width, False, res.signature, is_json=args.format == "json"))
            elif args.task == "translate":
                lines = translate(args.model, _paths(args.input), client, out=args.output,
                                  beam_size=args.beam_size, max_len=args.max_len,
                                  alpha=args.alpha, batch_size=args.batch_size,
                                  timeout=args.timeout, **shard)  # fmt: skip
                if args.output is None:
                    sys.stdout.writelines(line + "\n" for line in lines)
            elif args.task == "vectors":
                for ev in evaluate_vectors(args.files, client, analogies=args.analogies,
                                           pairs=args.pairs, binary=args.binary,
                                           restrict_vocab=args.restrict_vocab,
                                           timeout=args.timeout):  # fmt: skip
                    print(json.dumps(ev))  # one JSON object per file, in order
            else:
                r = perplexity(args.model, _paths(args.input), client,
                               batch_size=args.batch_size, timeout=args.timeout, **shard)  # fmt: skip
                print(json.dumps({"perplexity": r.perplexity, "log10_prob": r.log10_prob,
                                  "nll": r.nll, "tokens": r.tokens, "lines": r.lines}))  # fmt: skip
    except (ValueError, TypeError, OSError) as e:
        print(f"fastrnn.distributed: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
