"""A hashing tokenizer: text -> fixed-length int32 token ids, no vocabulary file to fit or ship.

Lower-cased words ([a-z0-9']+) hashed with CRC32 into ids 1..vocab_size-1 (0 pads), truncated
or padded to `length`. Collisions are the price of having no vocabulary; with 2^14 buckets the
bag-of-embeddings models of the AUTOMATA text experiments lose little.
"""
import re
import zlib

import numpy as np

WORD = re.compile(r"[a-z0-9']+")


def hash_tokenize(texts, vocab_size, length):
    """[len(texts), length] int32 ids; a stable hash, so ids are the same on every machine."""
    out = np.zeros((len(texts), length), np.int32)
    for i, text in enumerate(texts):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        words = WORD.findall(text.lower())[:length]
        out[i, :len(words)] = [1 + zlib.crc32(w.encode()) % (vocab_size - 1) for w in words]
    return out
