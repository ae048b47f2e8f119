"""Word embeddings: word2vec (skip-gram and CBOW, negative sampling and hierarchical softmax) and
GloVe, trained by C++ kernels, with gensim 4's API and word2vec's file formats.

    from fastrnn.embeddings import Word2Vec, GloVe, KeyedVectors
    m = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1, negative=5, workers=2)
    m.wv.most_similar(positive=["king", "woman"], negative=["man"])
    m.wv.save_word2vec_format("vectors.bin", binary=True)

Command line: ``python -m fastrnn.embeddings train|eval ...`` (see ``--help``).
"""

from .glove import GloVe
from .keyedvectors import KeyedVectors
from .word2vec import Word2Vec

__all__ = ["GloVe", "KeyedVectors", "Word2Vec"]
