"""KeyedVectors: words and their vectors, with gensim's query, evaluation and file-format API.

Names, arguments, defaults and results follow gensim 4's ``gensim.models.KeyedVectors``, so code
written for gensim runs unchanged on the vectors fastrnn trains, and vectors move between the two
libraries through word2vec's text and binary formats (bitwise). Unknown words raise KeyError as in
gensim. Not here: gensim's approximate-nearest-neighbour indexers and fastText's subword vectors.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from .. import _C
from . import _stats

logger = logging.getLogger(__name__)

Key = Union[str, int]
PathLike = Union[str, "os.PathLike[str]"]

#: Scores (queries x vocabulary) computed per matrix product in evaluate_word_analogies.
_ANALOGY_SCORES = 1 << 23


def _unitvec(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _ensure_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (str, int, np.integer, np.ndarray)):
        return [x]
    return list(x)


class KeyedVectors:
    """A mapping from keys (words) to vectors; gensim's ``KeyedVectors`` API.

    Parameters
    ----------
    vector_size : int
        D, the length of every vector.
    count : int
        Rows to preallocate (gensim's argument; filled by ``add_vectors``).
    dtype : numpy dtype
        Of ``vectors`` (float32 unless given).

    Attributes
    ----------
    vectors : numpy.ndarray (V, D)
        Row i is the vector of ``index_to_key[i]``.
    index_to_key : list of str
    key_to_index : dict of str to int
    """

    def __init__(self, vector_size: int, count: int = 0, dtype: Any = np.float32) -> None:
        if isinstance(vector_size, bool) or not isinstance(vector_size, (int, np.integer)):
            raise TypeError(f"vector_size: expected an int, got {type(vector_size).__name__}")
        if vector_size < 1:
            raise ValueError(f"vector_size: must be >= 1, got {vector_size}")
        self.vector_size = int(vector_size)
        self.vectors = np.zeros((0, self.vector_size), dtype=dtype)
        self.index_to_key: list[str] = []
        self.key_to_index: dict[str, int] = {}
        self.expandos: dict[str, np.ndarray] = {}
        self.norms: np.ndarray | None = None
        self.next_index = 0
        if count:
            self.vectors = np.zeros((int(count), self.vector_size), dtype=dtype)

    @classmethod
    def from_arrays(
        cls, keys: Sequence[str], vectors: np.ndarray, counts: np.ndarray | None = None
    ) -> KeyedVectors:
        """KeyedVectors holding `vectors` (V, D) (not copied) for `keys` (V distinct str)."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors: expected a 2-D array (V, D), got shape {vectors.shape}")
        keys = list(keys)
        if len(keys) != vectors.shape[0]:
            raise ValueError(
                f"keys: expected {vectors.shape[0]} keys (one per row of vectors), got {len(keys)}"
            )
        kv = cls(vectors.shape[1], dtype=vectors.dtype)
        kv.vectors = vectors
        kv.index_to_key = keys
        kv.key_to_index = {k: i for i, k in enumerate(keys)}
        if len(kv.key_to_index) != len(keys):
            raise ValueError("keys: must be distinct")
        kv.next_index = len(keys)
        if counts is not None:
            kv.expandos["count"] = np.asarray(counts, np.int64)
        return kv

    # ---- lookup ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: Any) -> bool:
        return self.has_index_for(key)

    def has_index_for(self, key: Any) -> bool:
        try:
            return self.get_index(key, -1) >= 0
        except TypeError:
            return False

    def get_index(self, key: Any, default: int | None = None) -> int:
        """The row of `key`; an int key within range is its own index (as in gensim)."""
        val = self.key_to_index.get(key, -1) if isinstance(key, str) else -1
        if val >= 0:
            return val
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if 0 <= key < len(self.index_to_key):
                return int(key)
        if default is not None:
            return default
        raise KeyError(f"Key '{key}' not present")

    def get_vector(self, key: Key, norm: bool = False) -> np.ndarray:
        """The vector (D,) of `key`, unit-normalised if `norm`."""
        index = self.get_index(key)
        if norm:
            self.fill_norms()
            assert self.norms is not None
            return self.vectors[index] / self.norms[index]
        return self.vectors[index]

    word_vec = get_vector

    def __getitem__(self, key_or_keys: Any) -> np.ndarray:
        if isinstance(key_or_keys, (str, int, np.integer)):
            return self.get_vector(key_or_keys)  # type: ignore[arg-type]
        return np.vstack([self.get_vector(k) for k in key_or_keys])

    def get_vecattr(self, key: Key, attr: str) -> Any:
        return self.expandos[attr][self.get_index(key)].item()

    def set_vecattr(self, key: Key, attr: str, val: Any) -> None:
        if attr not in self.expandos:
            self.expandos[attr] = np.zeros(len(self.vectors), np.int64)
        self.expandos[attr][self.get_index(key)] = val

    def add_vectors(self, keys: Sequence[str], weights: np.ndarray) -> None:
        """Appends `keys` with their vectors `weights` (len(keys), D); existing keys are replaced."""
        if isinstance(keys, str):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        weights = np.asarray(weights, self.vectors.dtype)
        if weights.shape != (len(keys), self.vector_size):
            raise ValueError(
                f"weights: expected shape ({len(keys)}, {self.vector_size}), got {weights.shape}"
            )
        rows = self.vectors[: self.next_index]
        new: list[tuple[str, np.ndarray]] = []
        for k, w in zip(keys, weights):
            i = self.key_to_index.get(k)
            if i is not None:
                rows[i] = w
            else:
                self.key_to_index[k] = len(self.index_to_key) + len(new)
                new.append((k, w))
        if new:
            self.index_to_key.extend(k for k, _ in new)
            self.vectors = np.vstack([rows, np.array([w for _, w in new], self.vectors.dtype)])
            for name, arr in self.expandos.items():
                self.expandos[name] = np.concatenate(
                    [arr[: len(rows)], np.zeros(len(new), arr.dtype)]
                )
        self.next_index = len(self.index_to_key)
        self.norms = None

    def add_vector(self, key: str, vector: np.ndarray) -> int:
        self.add_vectors([key], np.asarray(vector).reshape(1, -1))
        return self.key_to_index[key]

    def fill_norms(self, force: bool = False) -> None:
        """Caches the L2 norm of every vector (recomputed after training or when `force`)."""
        if self.norms is None or force or len(self.norms) != len(self.vectors):
            self.norms = np.linalg.norm(self.vectors, axis=1)

    def get_normed_vectors(self) -> np.ndarray:
        """vectors (V, D) divided by their norms."""
        self.fill_norms(force=True)
        assert self.norms is not None
        return self.vectors / self.norms[..., np.newaxis]

    def get_mean_vector(
        self,
        keys: Sequence[Any],
        weights: Any = None,
        pre_normalize: bool = True,
        post_normalize: bool = False,
        ignore_missing: bool = True,
    ) -> np.ndarray:
        """Weighted mean (D,) of the (unit-normalised) vectors of `keys`, divided by sum |w|."""
        if len(keys) == 0:
            raise ValueError("cannot compute mean with no input")
        w = (
            np.ones(len(keys), self.vectors.dtype)
            if weights is None
            else np.asarray(weights, self.vectors.dtype)
        )
        if len(keys) != w.shape[0]:
            raise ValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, self.vectors.dtype)
        total = 0.0
        for k, wk in zip(keys, w):
            if isinstance(k, np.ndarray):
                mean += wk * k
                total += abs(wk)
            elif k in self:
                mean += wk * self.get_vector(k, norm=pre_normalize)
                total += abs(wk)
            elif not ignore_missing:
                raise KeyError(f"Key '{k}' not present in vocabulary")
        if total > 0:
            mean = mean / total
        if post_normalize:
            mean = _unitvec(mean).astype(self.vectors.dtype)
        return mean

    # ---- similarity queries -----------------------------------------------------------------

    def most_similar(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: int | None = 10,
        clip_start: int = 0,
        clip_end: int | None = None,
        restrict_vocab: int | None = None,
        indexer: Any = None,
    ) -> Any:
        """The `topn` keys most cosine-similar to the mean of the positive keys minus the negative
        ones (3CosAdd for analogies: positive=[b, c], negative=[a] answers a : b :: c : ?).

        Keys may be str, vectors (D,) or (key, weight) pairs. Returns [(key, cosine)] best first,
        the query keys left out; with ``topn=None`` the similarities of every key (V,).
        """
        if indexer is not None:
            raise NotImplementedError("indexer: approximate indexers are not supported")
        if isinstance(topn, int) and topn < 1:
            return []
        positive = _ensure_list(positive)
        negative = _ensure_list(negative)
        self.fill_norms()
        assert self.norms is not None
        clip_end = clip_end or len(self.vectors)
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        keys: list[Any] = []
        weight = np.concatenate((np.ones(len(positive)), -1.0 * np.ones(len(negative))))
        for idx, item in enumerate(positive + negative):
            if isinstance(item, (str, int, np.integer, np.ndarray)):
                keys.append(item)
            else:
                keys.append(item[0])
                weight[idx] = item[1]
        mean = self.get_mean_vector(
            keys, weight, pre_normalize=True, post_normalize=True, ignore_missing=False
        )
        all_keys = {
            self.get_index(k)
            for k in keys
            if isinstance(k, (str, int, np.integer)) and self.has_index_for(k)
        }
        dists = self.vectors[clip_start:clip_end] @ mean / self.norms[clip_start:clip_end]
        if not topn:
            return dists
        best = _top(dists, topn + len(all_keys))
        result = [
            (self.index_to_key[s + clip_start], float(dists[s]))
            for s in best
            if (s + clip_start) not in all_keys
        ]
        return result[:topn]

    def similar_by_word(
        self, word: str, topn: int | None = 10, restrict_vocab: int | None = None
    ) -> Any:
        return self.most_similar(positive=[word], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_vector(
        self, vector: np.ndarray, topn: int | None = 10, restrict_vocab: int | None = None
    ) -> Any:
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_key = similar_by_word

    def most_similar_cosmul(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> Any:
        """3CosMul (Levy and Goldberg 2014): the keys maximising the product of the positive
        keys' cosines over that of the negative keys' (cosines shifted to [0, 1])."""
        if isinstance(topn, int) and topn < 1:
            return []
        positive = _ensure_list(positive)
        negative = _ensure_list(negative)
        self.fill_norms()
        assert self.norms is not None
        all_words = {
            self.get_index(w)
            for w in positive + negative
            if not isinstance(w, np.ndarray) and w in self.key_to_index
        }
        pos = [self.get_vector(w, norm=True) if isinstance(w, str) else w for w in positive]
        neg = [self.get_vector(w, norm=True) if isinstance(w, str) else w for w in negative]
        if not pos:
            raise ValueError("cannot compute similarity with no input")
        end = restrict_vocab or len(self.vectors)
        vecs, norms = self.vectors[:end], self.norms[:end]
        pos_d = [(1 + vecs @ t / norms) / 2 for t in pos]
        neg_d = [(1 + vecs @ t / norms) / 2 for t in neg]
        dists = np.prod(pos_d, axis=0) / (np.prod(neg_d, axis=0) + 0.000001)
        if not topn:
            return dists
        best = _top(dists, topn + len(all_words))
        return [(self.index_to_key[s], float(dists[s])) for s in best if s not in all_words][:topn]

    def similarity(self, w1: Key, w2: Key) -> float:
        """Cosine similarity of two keys."""
        return float(np.dot(_unitvec(self[w1]), _unitvec(self[w2])))

    def n_similarity(self, ws1: Sequence[Key], ws2: Sequence[Key]) -> float:
        """Cosine similarity of the means of two sets of keys."""
        if not len(ws1) or not len(ws2):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        m1 = np.array([self[k] for k in ws1]).mean(axis=0)
        m2 = np.array([self[k] for k in ws2]).mean(axis=0)
        return float(np.dot(_unitvec(m1), _unitvec(m2)))

    def distance(self, w1: Key, w2: Key) -> float:
        """1 - cosine similarity."""
        return 1 - self.similarity(w1, w2)

    def doesnt_match(self, words: Iterable[str]) -> str:
        """The word furthest from the mean of the (unit-normalised) words; unknown words ignored."""
        words = list(words)
        used = [w for w in words if w in self]
        if len(used) != len(words):
            logger.warning(
                "vectors for words %s are not present in the model, ignoring these words",
                set(words) - set(used),
            )
        if not used:
            raise ValueError("cannot select a word from an empty list")
        vectors = np.vstack([self.get_vector(w, norm=True) for w in used]).astype(
            self.vectors.dtype
        )
        mean = self.get_mean_vector(list(vectors), post_normalize=True)
        dists = vectors @ mean
        return sorted(zip(dists, used))[0][1]

    # ---- evaluation ---------------------------------------------------------------------------

    def evaluate_word_analogies(
        self,
        analogies: PathLike,
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
        similarity_function: str = "most_similar",
    ) -> tuple[float, list[dict[str, Any]]]:
        """Accuracy on analogies in questions-words format (``: section`` lines, then
        ``a b c expected``), answered by 3CosAdd over the `restrict_vocab` most frequent keys, as
        gensim does. Returns (accuracy, sections); the last section is ``Total accuracy``.
        Questions with an unknown word are skipped (counted wrong with `dummy4unknown`).
        """
        if similarity_function not in ("most_similar", "most_similar_cosmul"):
            raise ValueError(
                f"similarity_function: expected 'most_similar' or 'most_similar_cosmul', got {similarity_function!r}"
            )
        ok_keys = self.index_to_key[:restrict_vocab]
        up = (lambda s: s.upper()) if case_insensitive else (lambda s: s)
        ok_vocab = {up(k): self.get_index(k) for k in reversed(ok_keys)}
        oov = 0
        sections: list[dict[str, Any]] = []
        section: dict[str, Any] | None = None
        questions: list[tuple[dict[str, Any], tuple[str, str, str, str]]] = []
        n_questions = 0
        with open(analogies, "rb") as fin:
            for line_no, raw in enumerate(fin):
                line = raw.decode("utf8")
                if line.startswith(": "):
                    if section:
                        sections.append(section)
                    section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
                    continue
                if not section:
                    raise ValueError(
                        f"Missing section header before line #{line_no} in {analogies}"
                    )
                try:
                    a, b, c, expected = [up(w) for w in line.split()]
                except ValueError:
                    logger.info("Skipping invalid line #%i in %s", line_no, analogies)
                    continue
                n_questions += 1
                if (
                    a not in ok_vocab
                    or b not in ok_vocab
                    or c not in ok_vocab
                    or expected not in ok_vocab
                ):
                    oov += 1
                    if dummy4unknown:
                        section["incorrect"].append((a, b, c, expected))
                    continue
                questions.append((section, (a, b, c, expected)))
        if section:
            sections.append(section)
        if n_questions == 0:
            raise ValueError(f"analogies: no questions found in {analogies}")
        self._answer_analogies(questions, ok_vocab, restrict_vocab, up, similarity_function)
        total = {
            "section": "Total accuracy",
            "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
            "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections)),
        }
        n = len(total["correct"]) + len(total["incorrect"])
        score = len(total["correct"]) / n if n else 0.0
        logger.info("Quadruplets with out-of-vocabulary words: %.1f%%", 100.0 * oov / n_questions)
        logger.info("%s: %.1f%% (%i/%i)", total["section"], 100 * score, len(total["correct"]), n)
        sections.append(total)
        return score, sections

    def _answer_analogies(
        self,
        questions: list[tuple[dict[str, Any], tuple[str, str, str, str]]],
        ok_vocab: dict[str, int],
        restrict_vocab: int,
        up: Any,
        similarity_function: str,
    ) -> None:
        """gensim's per-question loop, scored a batch of questions per matrix product: the answer
        is the first of the top 5 candidates (query rows excluded) whose key is not a query word."""
        if not questions:
            return
        self.fill_norms()
        assert self.norms is not None
        end = min(restrict_vocab, len(self.vectors))
        vecs, norms = self.vectors[:end], self.norms[:end]
        safe = np.where(self.norms > 0, self.norms, 1)
        step = max(1, _ANALOGY_SCORES // max(end, 1))
        for lo in range(0, len(questions), step):
            batch = questions[lo : lo + step]
            idx = np.array([[ok_vocab[w] for w in q[:3]] for _, q in batch])  # (Q, 3): a, b, c
            unit = self.vectors[idx] / safe[idx][..., None]  # (Q, 3, D)
            if similarity_function == "most_similar":
                mean = (unit[:, 1] + unit[:, 2] - unit[:, 0]) / 3
                mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-30)
                scores = (vecs @ mean.astype(vecs.dtype).T).T / norms  # (Q, end)
            else:
                cos = np.einsum("vd,qkd->qkv", vecs, unit.astype(vecs.dtype)) / norms
                cos = (1 + cos) / 2
                scores = cos[:, 1] * cos[:, 2] / (cos[:, 0] + 0.000001)
            rows = np.arange(len(batch))[:, None]
            for k in range(3):
                inside = idx[:, k] < end
                scores[rows[inside, 0], idx[inside, k]] = -np.inf
            if end > 5:  # the 5 best of each row, best first
                part = np.argpartition(-scores, 4, axis=1)[:, :5]
                order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
                top = np.take_along_axis(part, order, axis=1)
            else:
                top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
            for (section, q), cand in zip(batch, top):
                a, b, c, expected = q
                ignore = {a, b, c}
                predicted = None
                for s in cand:
                    predicted = up(self.index_to_key[int(s)])
                    if predicted in ok_vocab and predicted not in ignore:
                        break
                section["correct" if predicted == expected else "incorrect"].append(q)

    def evaluate_word_pairs(
        self,
        pairs: PathLike,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[tuple[float, float], tuple[float, float], float]:
        """Correlation of the model's cosine similarities with human judgements (wordsim353,
        simlex999: ``word1<TAB>word2<TAB>score`` lines, ``#`` comments) as gensim computes it.
        Returns ((pearson, p), (spearman, p), oov_ratio in percent)."""
        ok_keys = self.index_to_key[:restrict_vocab]
        up = (lambda s: s.upper()) if case_insensitive else (lambda s: s)
        ok_vocab = {up(k): self.get_index(k) for k in reversed(ok_keys)}
        gold: list[float] = []
        model: list[float] = []
        oov = 0
        with open(pairs, encoding=encoding) as fin:
            for line_no, line in enumerate(fin):
                if not line or line.startswith("#"):
                    continue
                try:
                    a, b, sim_s = [up(w) for w in line.split(delimiter)]
                    sim = float(sim_s)
                except (ValueError, TypeError):
                    logger.info("Skipping invalid line #%d in %s", line_no, pairs)
                    continue
                if a not in ok_vocab or b not in ok_vocab:
                    oov += 1
                    if dummy4unknown:
                        model.append(0.0)
                        gold.append(sim)
                    continue
                gold.append(sim)
                model.append(self.similarity(ok_vocab[a], ok_vocab[b]))
        if not gold:
            raise ValueError(f"pairs: no pair of {pairs} has both words in the vocabulary")
        sp = _stats.spearman(np.array(gold), np.array(model))
        pe = _stats.pearson(np.array(gold), np.array(model))
        oov_ratio = float(oov) / (len(gold) if dummy4unknown else len(gold) + oov) * 100
        return pe, sp, oov_ratio

    # ---- files ------------------------------------------------------------------------------

    def save_word2vec_format(
        self,
        fname: PathLike,
        fvocab: PathLike | None = None,
        binary: bool = False,
        total_vec: int | None = None,
        write_header: bool = True,
    ) -> None:
        """Writes word2vec's format (that of the original C tool and gensim): a header line
        ``V D``, then per key ``key v1 ... vD`` in text (shortest exact float32 decimals), or
        ``key `` and D little-endian float32 in binary. `fvocab` gets ``key count`` lines."""
        n = len(self.index_to_key)
        vecs = np.ascontiguousarray(self.vectors[:n], dtype="<f4")
        if fvocab is not None:
            counts = self.expandos.get("count")
            with open(fvocab, "wb") as vout:
                for i, k in enumerate(self.index_to_key):
                    c = int(counts[i]) if counts is not None else n - i
                    vout.write(f"{k} {c}\n".encode())
        with open(fname, "wb") as fout:
            if write_header:
                fout.write(f"{total_vec or n} {self.vector_size}\n".encode())
            if binary:
                for k, row in zip(self.index_to_key, vecs):
                    fout.write(k.encode() + b" " + row.tobytes())
            else:
                for k, row in zip(self.index_to_key, _C.emb_format_rows(vecs)):
                    fout.write(k.encode() + row)

    @classmethod
    def load_word2vec_format(
        cls,
        fname: PathLike,
        fvocab: PathLike | None = None,
        binary: bool = False,
        encoding: str = "utf8",
        unicode_errors: str = "strict",
        limit: int | None = None,
        datatype: Any = np.float32,
        no_header: bool = False,
    ) -> KeyedVectors:
        """Reads word2vec's text or binary format (gensim's and the C tool's files; a newline
        after each binary vector is optional). Malformed files raise ValueError naming the line
        or key; duplicate keys keep their first vector (as gensim)."""
        counts: dict[str, int] | None = None
        if fvocab is not None:
            counts = {}
            with open(fvocab, "rb") as fin:
                for line in fin:
                    w, c = line.decode(encoding, unicode_errors).strip().split()
                    counts[w] = int(c)
        with open(fname, "rb") as fin:
            data = fin.read()
        buf = io.BytesIO(data)
        if no_header:
            if binary:
                raise NotImplementedError("no_header only available for text-format files")
            lines = [ln for ln in data.split(b"\n") if ln.strip()]
            if not lines:
                raise ValueError(f"{fname}: no vectors")
            V, D = len(lines), len(lines[0].rstrip().split(b" ")) - 1
        else:
            header = buf.readline().decode(encoding, unicode_errors)
            try:
                V, D = (int(x) for x in header.split())
            except ValueError:
                raise ValueError(
                    f"{fname}: expected a header line 'vocab_size vector_size', got {header[:80]!r}"
                ) from None
            if V < 0 or D < 1:
                raise ValueError(f"{fname}: invalid header {header.strip()!r}")
        if limit:
            V = min(V, limit)
        keys: list[str] = []
        rows = np.empty((V, D), np.float32)
        seen: set[str] = set()
        if binary:
            nbytes = 4 * D
            pos = buf.tell()
            for i in range(V):
                while pos < len(data) and data[pos : pos + 1] in (b"\n", b"\r"):
                    pos += 1
                sp = data.find(b" ", pos)
                if sp < 0 or sp + 1 + nbytes > len(data):
                    raise ValueError(
                        f"{fname}: unexpected end of input after {i} of {V} vectors; is the count incorrect or the file damaged?"
                    )
                key = data[pos:sp].decode(encoding, unicode_errors)
                vec = np.frombuffer(data, "<f4", D, sp + 1)
                pos = sp + 1 + nbytes
                if key in seen:
                    logger.warning(
                        "duplicate word '%s' in word2vec file, ignoring all but first", key
                    )
                    continue
                seen.add(key)
                rows[len(keys)] = vec
                keys.append(key)
        else:
            text = lines if no_header else buf.read().split(b"\n")
            got = 0
            for line_no, line in enumerate(text):
                if got == V:
                    break
                if not line.strip():
                    continue
                parts = line.decode(encoding, unicode_errors).rstrip().split(" ")
                if len(parts) != D + 1:
                    raise ValueError(
                        f"{fname}: invalid vector on line {line_no + (1 if no_header else 2)}: "
                        f"expected a key and {D} numbers, got {len(parts) - 1} fields (is this really the text format?)"
                    )
                got += 1
                try:
                    vec = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    raise ValueError(
                        f"{fname}: line {line_no + (1 if no_header else 2)}: not a number in the vector of {parts[0]!r}"
                    ) from None
                if parts[0] in seen:
                    logger.warning(
                        "duplicate word '%s' in word2vec file, ignoring all but first", parts[0]
                    )
                    continue
                seen.add(parts[0])
                rows[len(keys)] = vec
                keys.append(parts[0])
            if got < V:
                raise ValueError(
                    f"{fname}: unexpected end of input: {got} of {V} vectors; is the count incorrect or the file damaged?"
                )
        n = len(keys)
        if counts is None:
            cnt = np.arange(V, V - n, -1, dtype=np.int64)
        else:
            cnt = np.array([counts.get(k, 0) for k in keys], np.int64)
        return cls.from_arrays(keys, rows[:n].astype(datatype, copy=False), cnt)

    def save(self, fname: PathLike) -> None:
        """Saves keys, vectors and counts in one .npz file (no pickle); `KeyedVectors.load`."""
        meta = {"format": "fastrnn.KeyedVectors", "version": 1}
        arrays = {f"expando_{k}": v for k, v in self.expandos.items()}
        with open(fname, "wb") as f:
            np.savez(
                f,
                meta=np.array(json.dumps(meta)),
                keys=np.array(self.index_to_key, dtype=object).astype(str),
                vectors=self.vectors[: len(self.index_to_key)],
                **arrays,  # type: ignore[arg-type]
            )

    @classmethod
    def load(cls, fname: PathLike) -> KeyedVectors:
        """Loads what `save` wrote."""
        with np.load(fname, allow_pickle=False) as z:
            if (
                "meta" not in z
                or json.loads(str(z["meta"])).get("format") != "fastrnn.KeyedVectors"
            ):
                raise ValueError(f"{fname}: not a file written by KeyedVectors.save")
            kv = cls.from_arrays([str(k) for k in z["keys"]], z["vectors"].copy())
            for name in z.files:
                if name.startswith("expando_"):
                    kv.expandos[name[len("expando_") :]] = z[name].copy()
        return kv

    def __repr__(self) -> str:
        return f"<KeyedVectors: {len(self)} keys, vector_size={self.vector_size}>"


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first (gensim's matutils.argsort(reverse=True))."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
    return np.argsort(-scores, kind="stable")
