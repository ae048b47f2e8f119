"""BLEU as a pure function of summed statistics, the result type, and the signature.

`compute_bleu` repeats sacrebleu's `BLEU.compute_bleu` operation for operation (same float
operations in the same order, the builtin `sum`), so scores agree bit for bit; it is the whole
metric, and everything else in fastrnn.bleu only gathers its statistics.

Statistics of a segment or corpus: `sys_len` hypothesis tokens, `ref_len` reference tokens (per
segment, the reference length closest to the hypothesis length, the shorter on ties),
`correct[n-1]` clipped matching n-grams and `total[n-1]` hypothesis n-grams, n = 1..order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Union

#: Default `smooth_value` of each smoothing method (None: the method takes no value).
#: floor and add-k defaults are those of Chen & Cherry (2014), as in sacrebleu.
SMOOTH_DEFAULTS: dict[str, float | int | None] = {
    "none": None,
    "floor": 0.1,
    "add-k": 1,
    "exp": None,
}
MAX_NGRAM_ORDER = 4
_LOG_OF_ZERO = -9999999999  # sacrebleu's floor for log(0): any zero precision gives BLEU 0

Number = Union[int, float]


@dataclass(repr=False)
class BLEUScore:
    """A BLEU score and the statistics it came from, as sacrebleu's BLEUScore.

    Attributes
    ----------
    score : float
        BLEU in [0, 100].
    counts, totals : list of int (float with a non-integer add-k value)
        Clipped matches and hypothesis n-grams per order 1..max_ngram_order; with add-k
        smoothing they include its increments, as sacrebleu reports them.
    precisions : list of float
        n-gram precisions in percent (0 for orders after the last one with any n-gram).
    bp : float
        Brevity penalty exp(1 - ref_len / sys_len) when sys_len < ref_len, else 1.
    sys_len, ref_len : int
        Hypothesis and (closest) reference lengths in tokens.
    signature : str
        How the score was computed, sacrebleu's format, e.g.
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:fastrnn-0.1.0".
    """

    score: float
    counts: list[Number]
    totals: list[Number]
    precisions: list[float]
    bp: float
    sys_len: int
    ref_len: int
    signature: str = field(default="")
    mean: float | None = None  # bootstrap estimate and 95% half-width (command line's -ci)
    ci: float | None = None
    name: ClassVar[str] = "BLEU"

    @property
    def ratio(self) -> float:
        """sys_len / ref_len (0 when ref_len is 0)."""
        return self.sys_len / self.ref_len if self.ref_len else 0

    @property
    def verbose(self) -> str:
        """What follows the score: "p1/p2/p3/p4 (BP = ... ratio = ... hyp_len = ... ref_len = ...)"."""
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"{precisions} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
            f"hyp_len = {self.sys_len:d} ref_len = {self.ref_len:d})"
        )

    def format(
        self,
        width: int = 2,
        score_only: bool = False,
        signature: str | None = None,
        is_json: bool = False,
    ) -> str:
        """sacrebleu's score line, "BLEU|<signature> = 12.34 <verbose>", or the score alone.

        Parameters
        ----------
        width : int
            Decimals of the score.
        score_only : bool
            Only the score ("12.34"), unless `is_json`.
        signature : str or None
            Printed after "BLEU|"; None or "" leaves it out (as `str(score)` does).
        is_json : bool
            A JSON object instead: name, score, signature, verbose_score and each signature field.
        """
        return format_score(
            self.name, self.score, self.mean, self.ci, self.verbose, width, score_only,
            signature, is_json,
        )  # fmt: skip

    def __repr__(self) -> str:
        return self.format()


def format_score(
    name: str,
    score: float,
    mean: float | None,
    ci: float | None,
    verbose: str | None,
    width: int,
    score_only: bool,
    signature: str | None,
    is_json: bool,
) -> str:
    """sacrebleu's score line of any metric ("<name>|<signature> = 12.34 [<verbose>]"), the score
    alone, or its JSON object (name, score, signature, the confidence entries, verbose_score when
    the metric has one, then each signature field: sacrebleu's key order)."""
    sc = f"{score:.{width}f}"
    confidence = confidence_fields(mean, ci, width)
    if is_json:
        d: dict[str, object] = {
            "name": name,
            "score": float(sc),
            "signature": signature or "",
            **confidence,
        }
        if verbose is not None:
            d["verbose_score"] = verbose
        for item in signature.split("|") if signature else ():
            key, _, value = item.partition(":")
            d[key] = value
        return json.dumps(d, indent=1, ensure_ascii=False)
    if confidence:
        sc += f" ({confidence['confidence']})"
    if score_only:
        return sc
    head = f"{name}|{signature}" if signature else name
    return f"{head} = {sc}" + (f" {verbose}" if verbose is not None else "")


def confidence_fields(mean: float | None, ci: float | None, width: int) -> dict[str, object]:
    """sacrebleu's confidence entries of a score with a bootstrap estimate (none unless mean > 0,
    as there): confidence_mean, confidence_var (the half-width) and the text "μ = m ± h"."""
    if mean is None or ci is None or not mean > 0:
        return {}
    m, h = f"{mean:.{width}f}", f"{ci:.{width}f}"
    return {"confidence_mean": float(m), "confidence_var": float(h), "confidence": f"μ = {m} ± {h}"}


def compute_bleu(
    correct: Sequence[Number],
    total: Sequence[Number],
    sys_len: int,
    ref_len: int,
    smooth_method: str = "none",
    smooth_value: float | None = None,
    effective_order: bool = False,
    max_ngram_order: int = MAX_NGRAM_ORDER,
) -> BLEUScore:
    """BLEU from summed statistics: BP * exp(mean over n of log p_n), p_n in percent.

    Smoothing of zero precisions (Chen & Cherry, 2014): "none"; "floor" (p_n = smooth_value /
    total_n, default 0.1); "add-k" (add smooth_value, default 1, to correct_n and total_n for
    n > 1); "exp" (mteval's: the k-th zero precision becomes 1 / (2**k * total_n)). With
    `effective_order`, the mean stops at the last order that has any n-gram (sentence BLEU).

    Parameters
    ----------
    correct, total : sequence of numbers, (max_ngram_order,)
    sys_len, ref_len : int
    smooth_method : {"none", "floor", "add-k", "exp"}
    smooth_value : float or None
        None: the method's default (SMOOTH_DEFAULTS).
    effective_order : bool
    max_ngram_order : int

    Returns
    -------
    BLEUScore
        Without a signature (the callers that know the settings add it).
    """
    if smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(
            f"smooth_method: expected one of 'exp', 'floor', 'add-k', 'none', got {smooth_method!r}"
        )
    value = SMOOTH_DEFAULTS[smooth_method] if smooth_value is None else smooth_value
    correct, total = list(correct), list(total)  # add-k's increments show in the result
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    else:
        bp = 1.0
    precisions = [0.0] * max_ngram_order
    if not any(correct):
        return BLEUScore(0.0, correct, total, precisions, bp, sys_len, ref_len)

    halvings = 1.0  # exp smoothing: 2 ** (number of zero precisions so far)
    used = max_ngram_order
    for n in range(max_ngram_order):
        if smooth_method == "add-k" and n > 0:
            correct[n] += value  # type: ignore[operator]
            total[n] += value  # type: ignore[operator]
        if total[n] == 0:
            break  # no n-grams this long (nor longer): the remaining precisions stay 0
        if effective_order:
            used = n + 1
        if correct[n] == 0:
            if smooth_method == "exp":
                halvings *= 2
                precisions[n] = 100.0 / (halvings * total[n])
            elif smooth_method == "floor":
                precisions[n] = 100.0 * value / total[n]  # type: ignore[operator]
        else:
            precisions[n] = 100.0 * correct[n] / total[n]

    logs = [math.log(p) if p != 0.0 else _LOG_OF_ZERO for p in precisions[:used]]
    score = bp * math.exp(sum(logs) / used)
    return BLEUScore(score, correct, total, precisions, bp, sys_len, ref_len)


def signature(
    nrefs: int | str,
    *,
    tokenize: str,
    smooth_method: str,
    smooth_value: float | None,
    effective_order: bool,
    lowercase: bool | None,
    short: bool = False,
) -> str:
    """sacrebleu's signature string: nrefs, case, eff, tok, smooth, version.

    `lowercase=None` leaves out the case field (token ids have no case). The version field names
    this implementation ("fastrnn-X.Y.Z"), which reproduces sacrebleu 2.x's BLEU.
    """
    from .. import __version__  # the package is fully imported by the time anyone scores

    smooth = smooth_method
    default = SMOOTH_DEFAULTS[smooth_method]
    if default is not None:
        smooth += f"[{(default if smooth_value is None else smooth_value):.2f}]"
    fields = [("nrefs", "#", nrefs)]
    if lowercase is not None:
        fields.append(("case", "c", "lc" if lowercase else "mixed"))
    fields += [
        ("eff", "e", "yes" if effective_order else "no"),
        ("tok", "tok", tokenize),
        ("smooth", "s", smooth),
        ("version", "v", f"fastrnn-{__version__}"),
    ]
    return "|".join(f"{abbr if short else name}:{value}" for name, abbr, value in fields)
