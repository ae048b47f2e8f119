"""Paired significance tests of systems against a baseline, identical to sacrebleu 2.x's.

`paired_bootstrap` (Koehn 2004, as Moses' bootstrap-hypothesis-difference-significance.pl and
sacrebleu do it, with a 95% confidence interval) and `paired_randomization` (approximate
randomization, Riezler & Maxwell 2005, as multeval and sacrebleu do it). The first system is the
baseline. For the same inputs and seed, every score, p-value, mean and interval equals
sacrebleu's: the random draws are NumPy's, made exactly as sacrebleu makes them
(``default_rng(seed)``, then ``choice`` or ``integers``), and the statistics are summed and
scored in the same number types (float32 for bootstrap resamples, as sacrebleu sums them).

What differs is speed: segment statistics are counted once per system, and the resamples are
summed and scored in C++ (fastrnn._C), in parallel, instead of one NumPy sum and one Python
score per resample.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import _C
from . import _checks
from ._chrf import CHRFScore, compute_chrf
from ._chrf import _stats as _chrf_stats
from ._chrf import signature as _chrf_signature
from ._score import signature as _bleu_signature
from ._text import COMPENSATED_SUM, Refs, _lower, score_of_totals, smooth_value_of
from .tokenizers import DEFAULT_TOKENIZER, get_tokenizer

METRICS = ("bleu", "chrf")


@dataclass
class PairedResult:
    """One system's result in a paired test (sacrebleu's significance.Result).

    Attributes
    ----------
    score : float
        The system's corpus score.
    p_value : float or None
        Probability of a score difference at least this large under the null hypothesis that
        the system and the baseline come from the same process; None for the baseline.
    mean, ci : float or None
        Bootstrap estimate of the true mean score and half-width of its 95% interval (paired
        bootstrap only; None for approximate randomization).
    """

    score: float
    p_value: float | None = None
    mean: float | None = None
    ci: float | None = None


class PairedResults(dict):  # type: ignore[type-arg]
    """{system name: PairedResult}, the baseline first, with the metric's `name` ("BLEU",
    "chrF2", ...) and `signature` (sacrebleu's, with the test's bs/ar and seed fields)."""

    name: str
    signature: str


@dataclass
class _Metric:
    """A metric as the tests need it: per-segment statistics, corpus score, C++ spec."""

    name: str
    stats: Callable[[list[str], list[list[Any]]], np.ndarray]
    score: Callable[[list[int]], float]
    signature: Callable[[Any, Sequence[tuple[str, Any]]], str]
    spec: dict[str, Any]


def _bleu(
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = 4,
    effective_order: bool = False,
) -> _Metric:
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    lowercase = _checks.flag("lowercase", lowercase)
    k = opt.max_ngram_order

    def stats(hyps: list[str], streams: list[list[Any]]) -> np.ndarray:
        if lowercase:
            hyps, streams = _lower(hyps), [_lower(s) for s in streams]
        return _C._bleu_text_stats(hyps, streams, tok.native, tok.table(), k)

    def score(total: list[int]) -> float:
        return score_of_totals(total, opt).score

    def signature(nrefs: Any, extra: Sequence[tuple[str, Any]]) -> str:
        sig = _bleu_signature(
            nrefs,
            tokenize=tok.signature,
            smooth_method=opt.smooth_method,
            smooth_value=opt.smooth_value,
            effective_order=opt.effective_order,
            lowercase=lowercase,
        )
        head, _, rest = sig.partition("|")  # the test's fields follow nrefs, as in sacrebleu
        return "|".join([head, *(f"{key}:{value}" for key, value in extra), rest])

    spec = {
        "metric": "bleu",
        "order": k,
        "smooth": opt.smooth_method,
        "smooth_value": smooth_value_of(opt),
        "effective_order": opt.effective_order,
        "compensated_sum": COMPENSATED_SUM,
    }
    return _Metric("BLEU", stats, score, signature, spec)


def _chrf(
    char_order: int = 6,
    word_order: int = 0,
    beta: int | float = 2,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> _Metric:
    opt = _checks.chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing)
    name = CHRFScore(0.0, opt.char_order, opt.word_order, opt.beta).name
    spec = {
        "metric": "chrf",
        "char_order": opt.char_order,
        "word_order": opt.word_order,
        "beta": float(opt.beta),
        "whitespace": opt.whitespace,
        "eps_smoothing": opt.eps_smoothing,
    }
    return _Metric(
        name,
        lambda hyps, streams: _chrf_stats(hyps, streams, opt),
        lambda total: (
            compute_chrf(total, opt.char_order, opt.word_order, opt.beta, opt.eps_smoothing).score
        ),
        lambda nrefs, extra: _chrf_signature(nrefs, opt, extra),
        spec,
    )


def _metric(metric: Any, options: Mapping[str, Any]) -> _Metric:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(map(repr, METRICS))}, got {metric!r}")
    make = _bleu if metric == "bleu" else _chrf
    allowed = list(inspect.signature(make).parameters)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"{unknown[0]}: not an option of metric={metric!r} (its options: {', '.join(allowed)})"
        )
    return make(**options)


def _samples(n_samples: Any) -> int:
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, numbers.Integral):
        raise TypeError(f"n_samples: expected a positive integer, got {n_samples!r}")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples: expected a positive integer, got {n_samples}")
    return int(n_samples)


def _seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected a non-negative integer or None, got {seed!r}")
    if int(seed) < 0:
        raise ValueError(f"seed: expected a non-negative integer or None, got {seed}")
    return int(seed)


def _prepare(
    systems: Any, refs: Refs, metric: Any, options: Mapping[str, Any]
) -> tuple[list[str], _Metric, list[np.ndarray], Any]:
    named = _checks.systems(systems)
    m = _metric(metric, options)
    _, streams, nrefs = _checks.text_corpus(named[0][1], refs)
    # Systems are counted side by side: the C++ counting runs without the GIL.
    threads = min(len(named), int(_C.get_num_threads()))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            stats = list(pool.map(lambda item: m.stats(item[1], streams), named))
    else:
        stats = [m.stats(hyps, streams) for _, hyps in named]
    return [name for name, _ in named], m, stats, nrefs


def _p_value(sample_stats: np.ndarray, real_difference: float) -> float:
    # multeval's: the share of samples strictly beyond the real difference, +1 on both sides
    c = np.sum(sample_stats > real_difference).item()
    return (c + 1) / (len(sample_stats) + 1)


def _estimate_ci(scores: np.ndarray) -> tuple[Any, Any]:
    scores = np.sort(scores)
    n = len(scores)
    lower_idx = n // 40  # 95%: 1/40 from either end
    upper_idx = n - lower_idx - 1
    return scores.mean(), 0.5 * (scores[upper_idx] - scores[lower_idx])


def paired_bootstrap(
    systems: Mapping[str, Sequence[str]],
    refs: Refs,
    *,
    n_samples: int = 1000,
    seed: int | None = 12345,
    metric: str = "bleu",
    **options: Any,
) -> PairedResults:
    """Paired bootstrap resampling test of each system against the baseline (the first).

    Identical to sacrebleu's ``--paired-bs`` (``PairedTest(..., test_type="bs")``) with
    ``SACREBLEU_SEED=seed``: the same resamples, scores, p-values, means and intervals.

    Parameters
    ----------
    systems : dict of str -> list of str
        System name -> hypotheses (N each); the first entry is the baseline.
    refs : list of R lists of str, (R, N)
        Reference streams, as in `corpus_bleu`.
    n_samples : int
        Bootstrap resamples (1000).
    seed : int or None
        NumPy seed (sacrebleu's default 12345; its SACREBLEU_SEED); None draws fresh entropy.
        sacrebleu draws the systems' resamples unseeded when the seed is 0 (a quirk of
        PairedTest); here 0 is an ordinary seed.
    metric : {"bleu", "chrf"}
    **options
        The metric's arguments (`corpus_bleu`'s tokenize, lowercase, smooth_method, ...;
        `corpus_chrf`'s char_order, word_order, beta, ...).

    Returns
    -------
    PairedResults
        {name: PairedResult(score, p_value, mean, ci)} in the given order; the baseline's
        p_value is None. `.name` and `.signature` describe the metric.
    """
    n_samples, seed = _samples(n_samples), _seed(seed)
    names, m, stats, nrefs = _prepare(systems, refs, metric, options)
    return _bootstrap(names, m, stats, nrefs, n_samples, seed)


def _bootstrap(
    names: list[str], m: _Metric, stats: list[np.ndarray], nrefs: Any, n_samples: int, seed: Any
) -> PairedResults:
    scores = [m.score(s.sum(axis=0, dtype=np.int64).tolist()) for s in stats]
    n = stats[0].shape[0]
    idx = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)
    # sacrebleu resamples float32 copies of the statistics
    table = np.ascontiguousarray(np.stack(stats, axis=1), dtype=np.float32)  # (N, S, W)
    values, is_f32 = _C._bootstrap_scores(table, idx, m.spec)
    samples = [  # as np.array(list of scores) would type them: float32 only if all are
        v.astype(np.float32) if f.all() else v for v, f in zip(values, is_f32.astype(bool))
    ]
    out = PairedResults()
    for q, name in enumerate(names):
        mean, ci = _estimate_ci(samples[q])
        p = None
        if q > 0:
            sample_diffs = np.abs(samples[q] - samples[0])
            p = _p_value(sample_diffs - sample_diffs.mean(), abs(scores[0] - scores[q]))
        out[name] = PairedResult(scores[q], p, float(mean), float(ci))
    out.name = m.name
    out.signature = m.signature(nrefs, [("bs", n_samples), ("seed", str(seed).lower())])
    return out


def paired_randomization(
    systems: Mapping[str, Sequence[str]],
    refs: Refs,
    *,
    n_samples: int = 10000,
    seed: int | None = 12345,
    metric: str = "bleu",
    **options: Any,
) -> PairedResults:
    """Paired approximate randomization test of each system against the baseline (the first).

    Each trial swaps every segment's outputs between the two systems with probability 1/2;
    the p-value is the share of trials whose absolute score difference exceeds the real one.
    Identical to sacrebleu's ``--paired-ar`` with ``SACREBLEU_SEED=seed``.

    Parameters
    ----------
    systems, refs, seed, metric, **options
        As in `paired_bootstrap`.
    n_samples : int
        Trials (10000).

    Returns
    -------
    PairedResults
        {name: PairedResult(score, p_value)}; mean and ci are None (as in sacrebleu's command
        line, which estimates no interval for this test).
    """
    n_samples, seed = _samples(n_samples), _seed(seed)
    names, m, stats, nrefs = _prepare(systems, refs, metric, options)
    return _randomization(names, m, stats, nrefs, n_samples, seed)


def _randomization(
    names: list[str], m: _Metric, stats: list[np.ndarray], nrefs: Any, n_samples: int, seed: Any
) -> PairedResults:
    scores = [m.score(s.sum(axis=0, dtype=np.int64).tolist()) for s in stats]
    n = stats[0].shape[0]
    sel = np.random.default_rng(seed).integers(2, size=(n_samples, n), dtype=bool)
    others = np.ascontiguousarray(np.stack(stats[1:], axis=1))  # (N, S - 1, W)
    shuf_a, shuf_b = _C._randomization_scores(stats[0], others, sel.view(np.uint8), m.spec)
    out = PairedResults()
    out[names[0]] = PairedResult(scores[0])
    for q, name in enumerate(names[1:]):
        diff = abs(scores[0] - scores[q + 1])
        out[name] = PairedResult(scores[q + 1], _p_value(np.abs(shuf_a[q] - shuf_b[q]), diff))
    out.name = m.name
    out.signature = m.signature(nrefs, [("ar", n_samples), ("seed", str(seed).lower())])
    return out


def _from_stats(
    stats: Any, nrefs: Any, metric: Any, options: Mapping[str, Any]
) -> tuple[list[str], _Metric, list[np.ndarray], Any]:
    m = _metric(metric, options)
    spec = m.spec
    if spec["metric"] == "bleu":
        width = 2 + 2 * spec["order"]
    else:
        width = 3 * (spec["char_order"] + spec["word_order"])
    if not isinstance(stats, Mapping) or len(stats) < 2:
        raise TypeError(
            "stats: expected a dict of system name -> (N, W) segment statistics with the baseline "
            "first and at least one system"
        )
    names: list[str] = []
    arrays: list[np.ndarray] = []
    for name, a in stats.items():
        arr = np.asarray(a)
        if arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[1] != width:
            raise ValueError(
                f"stats[{name!r}]: expected integer statistics of shape (N, {width}) for "
                f"metric={metric!r}, got {arr.dtype} {arr.shape}"
            )
        if arrays and arr.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"stats[{name!r}]: expected {arrays[0].shape[0]} segments (as the baseline), "
                f"got {arr.shape[0]}"
            )
        if arr.size and int(arr.min()) < 0:
            raise ValueError(f"stats[{name!r}]: statistics are counts, got a negative value")
        names.append(str(name))
        arrays.append(np.ascontiguousarray(arr, dtype=np.int64))
    if arrays[0].shape[0] == 0:
        raise ValueError("stats: no segments")
    return names, m, arrays, nrefs


def paired_bootstrap_from_stats(
    stats: Mapping[str, np.ndarray],
    *,
    n_samples: int = 1000,
    seed: int | None = 12345,
    metric: str = "bleu",
    nrefs: int | str = 1,
    **options: Any,
) -> PairedResults:
    """`paired_bootstrap` of per-segment statistics (`bleu_statistics` / `chrf_statistics` rows,
    e.g. gathered from shards in segment order): {name: (N, W) int array}, baseline first.
    `nrefs` only fills the signature; `options` are the metric's (as in `paired_bootstrap`)."""
    names, m, arrays, nrefs = _from_stats(stats, nrefs, metric, options)
    return _bootstrap(names, m, arrays, nrefs, _samples(n_samples), _seed(seed))


def paired_randomization_from_stats(
    stats: Mapping[str, np.ndarray],
    *,
    n_samples: int = 10000,
    seed: int | None = 12345,
    metric: str = "bleu",
    nrefs: int | str = 1,
    **options: Any,
) -> PairedResults:
    """`paired_randomization` of per-segment statistics (see `paired_bootstrap_from_stats`)."""
    names, m, arrays, nrefs = _from_stats(stats, nrefs, metric, options)
    return _randomization(names, m, arrays, nrefs, _samples(n_samples), _seed(seed))


def confidence(
    hyps: Sequence[str],
    refs: Refs,
    *,
    n_samples: int = 1000,
    seed: int | None = 12345,
    metric: str = "bleu",
    **options: Any,
) -> tuple[Any, Any, str]:
    """Bootstrap estimate of one system's true score, as sacrebleu's ``corpus_score(...,
    n_bootstrap=n_samples)`` (its command line's ``-ci``): (mean, 95% half-width, signature with
    the bs and seed fields). The mean is statistics.mean of the resampled scores, as there."""
    import statistics

    n_samples, seed = _samples(n_samples), _seed(seed)
    m = _metric(metric, options)
    _, streams, nrefs = _checks.text_corpus(hyps, refs)
    stats = m.stats(list(hyps), streams)
    n = stats.shape[0]
    idx = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)
    table = np.ascontiguousarray(stats[:, None, :], dtype=np.float32)
    values, is_f32 = _C._bootstrap_scores(table, idx, m.spec)
    # the scores as sacrebleu holds them (numpy.float32 or float): statistics.mean depends on it
    raw: list[Any] = sorted(np.float32(v) if f else float(v) for v, f in zip(values[0], is_f32[0]))
    lower = n_samples // 40
    ci = 0.5 * (raw[n_samples - lower - 1] - raw[lower])
    signature = m.signature(nrefs, [("bs", n_samples), ("seed", str(seed).lower())])
    return statistics.mean(raw), ci, signature
