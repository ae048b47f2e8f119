"""Command line BLEU and chrF, like sacrebleu's (same options, same JSON):

    python -m fastrnn.bleu REF_FILE [REF_FILE ...] < HYP_FILE
    python -m fastrnn.bleu REF_FILE -i HYP_FILE [-m bleu chrf] [-tok intl] [-lc] [-f text]
    python -m fastrnn.bleu REF_FILE -i BASELINE SYS1 SYS2 ... --paired-bs [-m bleu chrf]

prints sacrebleu's JSON by default (`-f text`: its score line with the signature, e.g.
"BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:fastrnn-0.1.0 = 30.2 61.1/36.0/...").
Several systems (`-i` with several files, or tab-separated columns on standard input) print
one JSON object per system; `--paired-bs` / `--paired-ar` test each against the first (the
baseline) with sacrebleu's paired bootstrap resampling or approximate randomization, seeded by
SACREBLEU_SEED (default 12345), as sacrebleu is. Files are read as sacrebleu reads them: UTF-8
(see -e), one segment per line, trailing whitespace stripped; `.gz` files are decompressed.

Exit status: 0, 1 for an error (one line on stderr), 2 for bad options. Like other Unix
filters, a closed output pipe (`| head`) ends it quietly.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import io
import json
import os
import signal
import sys
import zlib
from collections.abc import Sequence
from typing import IO, Any

from ._chrf import BETA, CHAR_ORDER, WORD_ORDER, corpus_chrf, sentence_chrf
from ._score import MAX_NGRAM_ORDER, SMOOTH_DEFAULTS
from ._significance import PairedResults, confidence, paired_bootstrap, paired_randomization
from ._text import corpus_bleu, sentence_bleu
from .tokenizers import DEFAULT_TOKENIZER, TOKENIZERS

PROG = "python -m fastrnn.bleu"


class CliError(Exception):
    """An error to report on one line, with exit status 1."""


def _encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding: {name!r}") from None


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(
        prog=PROG,
        description="BLEU and chrF identical to sacrebleu's, computed by fastrnn. Reads "
        "hypotheses from standard input (or -i) and scores them against the reference files.",
    )
    p.add_argument("refs", nargs="+", metavar="REF_FILE", help="reference files, one per stream")
    p.add_argument(
        "-i",
        "--input",
        nargs="+",
        metavar="HYP_FILE",
        help="read hypotheses from these files, one system each (several: multi-system mode)",
    )
    p.add_argument(
        "-nr",
        "--num-refs",
        type=_positive,
        default=1,
        help="split each reference line on tabs into this many references (default: 1)",
    )
    p.add_argument(
        "-e", "--encoding", type=_encoding, default="utf-8", help="file encoding (default: utf-8)"
    )
    p.add_argument(
        "-m",
        "--metrics",
        nargs="+",
        choices=("bleu", "chrf"),
        default=["bleu"],
        help="metrics to compute (default: bleu)",
    )
    p.add_argument(
        "-sl",
        "--sentence-level",
        action="store_true",
        help="one score per line (BLEU with effective order, as sacrebleu does)",
    )
    b = p.add_argument_group("BLEU")
    b.add_argument("-tok", "--tokenize", choices=TOKENIZERS, default=DEFAULT_TOKENIZER)
    b.add_argument("-lc", "--lowercase", action="store_true", help="case-insensitive BLEU")
    b.add_argument("-s", "--smooth-method", choices=list(SMOOTH_DEFAULTS), default="exp")
    b.add_argument(
        "-sv",
        "--smooth-value",
        type=float,
        default=None,
        help="value for floor (default 0.1) and add-k (default 1)",
    )
    b.add_argument("--max-ngram-order", type=_positive, default=MAX_NGRAM_ORDER)
    b.add_argument("--force", action="store_true", help="do not warn about tokenized input")
    c = p.add_argument_group("chrF")
    c.add_argument("-cc", "--chrf-char-order", type=_positive, default=CHAR_ORDER)
    c.add_argument("-cw", "--chrf-word-order", type=int, default=WORD_ORDER, help="2 gives chrF++")
    c.add_argument("--chrf-beta", type=int, default=BETA)
    c.add_argument("--chrf-whitespace", action="store_true")
    c.add_argument("--chrf-lowercase", action="store_true")
    c.add_argument("--chrf-eps-smoothing", action="store_true")
    ci = p.add_argument_group("confidence interval of a single system (bootstrap resampling)")
    ci.add_argument("-ci", "--confidence", action="store_true", help="report a 95%% interval")
    ci.add_argument("-cin", "--confidence-n", type=_positive, default=1000, help="resamples")
    t = p.add_argument_group("paired significance tests (the first system is the baseline)")
    which = t.add_mutually_exclusive_group()
    which.add_argument("-par", "--paired-ar", action="store_true", help="approximate randomization")
    which.add_argument("-pbs", "--paired-bs", action="store_true", help="bootstrap resampling")
    t.add_argument("-parn", "--paired-ar-n", type=_positive, default=10000, help="trials")
    t.add_argument("-pbsn", "--paired-bs-n", type=_positive, default=1000, help="resamples")
    t.add_argument(
        "-j", "--paired-jobs", type=int, default=1, help="accepted for sacrebleu; fastrnn threads"
    )
    r = p.add_argument_group("output")
    r.add_argument("-q", "--quiet", action="store_true", help="accepted for sacrebleu")
    r.add_argument("-w", "--width", type=int, default=1, help="decimals of the score (default: 1)")
    r.add_argument("-b", "--score-only", action="store_true", help="print the score alone")
    r.add_argument("-sh", "--short", action="store_true", help="short signature")
    r.add_argument(
        "-f",
        "--format",
        choices=("json", "text"),
        default="json",
        help="json (default, as sacrebleu's; SACREBLEU_FORMAT overrides it as there) or text",
    )
    p.add_argument("-V", "--version", action="version", version=f"fastrnn {__version__}")
    return p


# --- reading ---------------------------------------------------------------------------------


def _open(path: str, encoding: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding, newline="\n")
    return open(path, encoding=encoding, newline="\n")


def _lines(path: str, encoding: str) -> list[str]:
    """The file's lines, trailing whitespace stripped; errors name the file."""
    try:
        with _open(path, encoding) as f:
            return [line.rstrip() for line in f]
    except UnicodeDecodeError as e:
        raise CliError(
            f"{path}: not valid {encoding} ({e.reason} at byte {e.start}); see -e"
        ) from e
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise CliError(f"{path}: corrupt or truncated gzip file ({e})") from e
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from e


def _read_refs(paths: Sequence[str], num_refs: int, encoding: str) -> list[list[str]]:
    if num_refs == 1:
        return [_lines(path, encoding) for path in paths]
    if len(paths) != 1:
        raise CliError("--num-refs: tab-separated references come in a single REF_FILE")
    streams: list[list[str]] = []  # made after the first line has num_refs fields
    for lineno, line in enumerate(_lines(paths[0], encoding), 1):
        fields = line.split("\t", num_refs - 1)
        if len(fields) != num_refs:
            raise CliError(
                f"{paths[0]}:{lineno}: expected {num_refs} tab-separated references, "
                f"found {len(fields)}"
            )
        if not streams:
            streams = [[] for _ in range(num_refs)]
        for stream, field in zip(streams, fields):
            stream.append(field)
    return streams or [[] for _ in range(min(num_refs, 1))]


def _read_systems(args: argparse.Namespace, paired: bool) -> tuple[list[str], list[list[str]]]:
    """Names and hypotheses of every system, as sacrebleu reads them."""
    names: list[str] = []
    systems: list[list[str]] = []
    if args.input is None:  # standard input: one system per tab-separated column
        try:
            f = io.TextIOWrapper(sys.stdin.buffer, encoding=args.encoding, newline="\n")
            first = f.readline().rstrip().split("\t")
            systems = [[s] for s in first]
            for lineno, line in enumerate(f, 2):
                fields = line.rstrip().split("\t")
                if len(fields) != len(systems):
                    raise CliError(
                        f"standard input:{lineno}: expected {len(systems)} tab-separated "
                        f"systems (as on line 1), found {len(fields)}"
                    )
                for column, sent in zip(systems, fields):
                    column.append(sent.rstrip())
        except UnicodeDecodeError as e:
            raise CliError(f"standard input: not valid {args.encoding} ({e.reason}); see -e") from e
        if paired:
            names = ["Baseline"] + [f"System {i}" for i in range(1, len(systems))]
        else:
            names = [f"System {i + 1}" for i in range(len(systems))]
        return names, systems
    for path in args.input:
        if path in names:
            if paired and path == names[0]:
                continue  # the baseline given again, as sacrebleu skips it
            raise CliError(f"{path!r} names two systems; give each system its own file")
        systems.append(_lines(path, args.encoding))
        names.append(path)
    if paired:
        names[0] = f"Baseline: {names[0]}"
    return names, systems


# --- metrics ---------------------------------------------------------------------------------


def _options(metric: str, args: argparse.Namespace) -> dict[str, Any]:
    if metric == "bleu":
        return {
            "tokenize": args.tokenize,
            "lowercase": args.lowercase,
            "smooth_method": args.smooth_method,
            "smooth_value": args.smooth_value,
            "max_ngram_order": args.max_ngram_order,
        }
    return {
        "char_order": args.chrf_char_order,
        "word_order": args.chrf_word_order,
        "beta": args.chrf_beta,
        "lowercase": args.chrf_lowercase,
        "whitespace": args.chrf_whitespace,
        "eps_smoothing": args.chrf_eps_smoothing,
    }


def _corpus(metric: str, hyps: list[str], refs: list[list[str]], args: argparse.Namespace) -> Any:
    if metric == "bleu":
        return corpus_bleu(hyps, refs, force=args.force, **_options(metric, args))
    return corpus_chrf(hyps, refs, **_options(metric, args))


def _sentence(metric: str, hyp: str, refs: list[str], args: argparse.Namespace) -> Any:
    if metric == "bleu":
        return sentence_bleu(hyp, refs, effective_order=True, **_options(metric, args))
    return sentence_chrf(hyp, refs, **_options(metric, args))


_SHORT = {
    "nrefs": "#",
    "bs": "bs",
    "ar": "ar",
    "seed": "rs",
    "case": "c",
    "eff": "e",
    "tok": "tok",
    "smooth": "s",
    "nc": "nc",
    "nw": "nw",
    "space": "s",
    "version": "v",
}


def _signature(sig: str, short: bool) -> str:
    if not short:
        return sig
    items = (item.partition(":") for item in sig.split("|"))
    return "|".join(f"{_SHORT.get(key, key)}:{value}" for key, _, value in items)


def _seed() -> int | None:
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    if seed.lower() == "none":
        return None
    try:
        return int(seed)
    except ValueError:
        raise CliError(f"SACREBLEU_SEED: expected an integer or 'none', got {seed!r}") from None


# --- output ----------------------------------------------------------------------------------


def _single(metrics: list[str], hyps: list[str], refs: list[list[str]], args: Any) -> str:
    is_json = args.format == "json"
    results = []
    for metric in sorted(metrics):  # sacrebleu's order: BLEU, CHRF
        score = _corpus(metric, hyps, refs, args)
        if args.confidence:
            score.mean, score.ci, score.signature = confidence(
                hyps,
                refs,
                n_samples=args.confidence_n,
                seed=_seed(),
                metric=metric,
                **_options(metric, args),
            )
        sig = _signature(score.signature, args.short and not is_json)
        # sacrebleu: -b prints the bare score, in JSON mode too
        results.append(
            score.format(args.width, args.score_only, sig, is_json and not args.score_only)
        )
    if is_json:
        return "[\n" + ",\n".join(results) + "\n]" if len(results) > 1 else results[0]
    if len(results) == 1 or args.score_only:
        return "\n".join(results)
    w = max(line.index("=") - 1 for line in results)  # align on " = "
    return "\n".join(
        f"{line[: line.index('=') - 1]:>{w}}{line[line.index('=') - 1 :]}" for line in results
    )


def _table(names: list[str], columns: dict[str, list[str]], sigs: dict[str, str]) -> str:
    header = ["System", *columns]
    rows = [[name, *(col[i] for col in columns.values())] for i, name in enumerate(names)]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]
    ]
    lines += ["", "-----------------", "Metric signatures", "-----------------"]
    lines += [f" - {name:<10} {sig}" for name, sig in sigs.items()]
    return "\n".join(lines)


def _multi(
    metrics: list[str], names: list[str], systems: list[list[str]], refs: Any, args: Any
) -> str:
    columns: dict[str, list[str]] = {}
    sigs: dict[str, str] = {}
    for hyps in systems:
        for metric in sorted(metrics):
            score = _corpus(metric, hyps, refs, args)
            columns.setdefault(score.name, []).append(score.format(args.width, True))
            sigs[score.name] = _signature(score.signature, args.short)
    if args.format == "json":
        out = [
            {"system": name, **{key: col[i] for key, col in columns.items()}}
            for i, name in enumerate(names)
        ]
        return json.dumps(out, indent=4)
    return _table(names, columns, sigs)


def _paired(
    metrics: list[str], names: list[str], systems: list[list[str]], refs: Any, args: Any
) -> str:
    seed = _seed()
    test, n = (
        (paired_bootstrap, args.paired_bs_n)
        if args.paired_bs
        else (
            paired_randomization,
            args.paired_ar_n,
        )
    )
    named = dict(zip(names, systems))
    results: list[PairedResults] = [
        test(named, refs, n_samples=n, seed=seed, metric=m, **_options(m, args)) for m in metrics
    ]
    if args.format == "json":
        out = [{"system": name, **{r.name: vars(r[name]) for r in results}} for name in names]
        return json.dumps(out, indent=4)
    w = args.width
    columns: dict[str, list[str]] = {}
    for r in results:
        cells = []
        for name in names:
            res = r[name]
            cell = f"{res.score:.{w}f}"
            if res.mean is not None:
                cell += f" ({res.mean:.{w}f} ± {res.ci:.{w}f})"
            if res.p_value is not None:
                cell += f" (p = {res.p_value:.4f})" + ("*" if res.p_value <= 0.05 else "")
            cells.append(cell)
        columns[r.name] = cells
    kind = "bootstrap resampling" if args.paired_bs else "approximate randomization"
    head = f"Paired {kind} test with {n} {'resampling trials' if args.paired_bs else 'trials'}"
    note = "p-values < 0.05 (marked *): the difference from the baseline is unlikely to be chance."
    sigs = {r.name: _signature(r.signature, args.short) for r in results}
    return _table(names, columns, sigs) + f"\n\n{head}\n{note}"


# --- main ------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> str:
    if os.environ.get("SACREBLEU_FORMAT", "").lower() in ("json", "text"):
        args.format = os.environ["SACREBLEU_FORMAT"].lower()
    metrics = list(dict.fromkeys(args.metrics))
    paired = args.paired_bs or args.paired_ar
    refs = _read_refs(args.refs, args.num_refs, args.encoding)
    names, systems = _read_systems(args, paired)
    if args.sentence_level:
        if len(metrics) > 1:
            raise CliError("-sl: only one metric can be used in sentence-level mode")
        if len(systems) > 1 or paired:
            raise CliError("-sl: sentence-level mode scores one system, without paired tests")
    if args.confidence and (len(systems) > 1 or args.sentence_level):
        raise CliError("-ci: for one system at corpus level; compare systems with --paired-bs")
    if paired and len(systems) < 2:
        raise CliError("--paired-bs/--paired-ar: give the baseline and the systems to -i")
    for name, hyps in zip(names, systems):
        for r, stream in enumerate(refs):
            if len(stream) != len(hyps):
                raise CliError(
                    f"{name}: the hypotheses have {len(hyps)} lines but reference stream "
                    f"{r + 1} has {len(stream)}"
                )
    if args.sentence_level:
        lines = []
        for i, hyp in enumerate(systems[0]):
            score = _sentence(metrics[0], hyp, [s[i] for s in refs], args)
            lines.append(
                score.format(args.width, args.score_only, _signature(score.signature, args.short))
            )
        return "\n".join(lines)
    if len(systems) == 1:
        return _single(metrics, systems[0], refs, args)
    if paired:
        return _paired(metrics, names, systems, refs, args)
    return _multi(metrics, names, systems, refs, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = _run(args)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix filters do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return 128 + signal.SIGPIPE
    except CliError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except MemoryError:
        return _fail("out of memory (a line or the corpus is too large to score here)")
    except (ValueError, TypeError) as e:
        return _fail(str(e))
    return 0


def _fail(message: str) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head`: end quietly, like cat or grep
    sys.exit(main())
