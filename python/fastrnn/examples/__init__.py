"""Runnable demos of fastrnn.nn and fastrnn.models (no downloads; data generated or already on disk):

    python -m fastrnn.examples.dates       date translation with attention (seq2seq, >= 99% exact match)
    python -m fastrnn.examples.charlm      character-level LSTM language model on English text
    python -m fastrnn.examples.sentiment   many-to-one review sentiment with negation

Each accepts --help; `--threads N` sets the kernel threads.
"""
