"""Text normalisation, stable hashing and word n-gram shingling for deduplication.

Exact duplicates are defined on the normalised text and near duplicates on its shingle sets, so
both must be identical from one night to the next: every hash here is computed with hashlib or
fixed 64-bit arithmetic, never with Python's salted ``hash()``.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from governance.errors import InvalidInputError

_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@cache
def _punctuation_table() -> dict[int, str]:
    """Every Unicode punctuation code point (categories P*) maps to a space."""
    return {
        cp: " " for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")
    }


@cache
def _ascii_punctuation_table() -> dict[int, str]:
    return {cp: " " for cp in _punctuation_table() if cp < 128}


def normalise_text(text: str) -> str:
    """NFKC, casefold, punctuation to space, whitespace collapsed to one space, stripped.

    ASCII text takes a shortcut (NFKC is the identity and casefold equals lower there) because
    this runs once per distinct text on a million rows a night.
    """
    if text.isascii():
        return " ".join(text.lower().translate(_ascii_punctuation_table()).split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.translate(_punctuation_table()).split())


NORMALISE_CHUNK = 100_000  # texts turned into Python strings at a time


def normalise_texts(texts: Sequence[str] | pd.Series) -> np.ndarray:
    """Normalise many texts, each distinct text of a chunk once; returns an object array aligned
    with the input. Chunks keep the transient copies small next to the result on a million rows."""
    out = np.empty(len(texts), dtype=object)
    ascii_table = _ascii_punctuation_table()
    for lo in range(0, len(texts), NORMALISE_CHUNK):
        chunk = (
            texts.iloc[lo : lo + NORMALISE_CHUNK]
            if isinstance(texts, pd.Series)
            else (texts[lo : lo + NORMALISE_CHUNK])
        )
        codes, uniques = _factorise(chunk)
        normalised = np.array(
            [
                " ".join(text.lower().translate(ascii_table).split())
                if text.isascii()
                else normalise_text(text)
                for text in uniques
            ],
            dtype=object,
        )
        out[lo : lo + len(codes)] = normalised[codes]
    return out


def _factorise(texts: Sequence[str] | pd.Series) -> tuple[np.ndarray, list[str]]:
    array = pa.array(texts, type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):  # a pandas column backed by pyarrow
        array = array.combine_chunks()
    encoded = pc.dictionary_encode(array)
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def stable_hash64(strings: Iterable[str]) -> np.ndarray:
    """blake2b-64 of each string's UTF-8 bytes as uint64: the same on every machine and day."""
    digests = b"".join(
        hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest() for value in strings
    )
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def exact_keys(norm_texts: Sequence[str]) -> np.ndarray:
    """The persisted exact-duplicate key of each normalised text (int64 for parquet)."""
    codes, uniques = _factorise(norm_texts)
    return stable_hash64(uniques).view(np.int64)[codes]


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fixed bijective 64-bit mix, vectorised over uint64 arrays."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= _MIX_1
    z ^= z >> np.uint64(27)
    z *= _MIX_2
    z ^= z >> np.uint64(31)
    return z


@dataclass(frozen=True)
class ShingleSets:
    """Shingle hashes of many documents in a CSR layout: doc i owns hashes[offsets[i]:offsets[i+1]].

    Hashes may repeat inside a document; consumers that need sets deduplicate.
    """

    offsets: np.ndarray  # int64, length n_docs + 1
    hashes: np.ndarray  # uint64

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated hashes of ``docs`` and, aligned with them, the position in ``docs``."""
        docs = np.asarray(docs, dtype=np.int64)
        starts = self.offsets[docs]
        lengths = self.offsets[docs + 1] - starts
        owner = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        first = np.cumsum(lengths) - lengths
        positions = np.arange(int(lengths.sum()), dtype=np.int64) - first[owner] + starts[owner]
        return self.hashes[positions], owner

    @staticmethod
    def concat(parts: Sequence[ShingleSets]) -> ShingleSets:
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for part in parts:
            offsets.append(part.offsets[1:] + base)
            base += int(part.offsets[-1])
        return ShingleSets(np.concatenate(offsets), np.concatenate([p.hashes for p in parts]))


SHINGLE_CHUNK_DOCS = 100_000  # bounds the token arrays alive at once on a million rows


def shingle_sets(norm_texts: Sequence[str], ngram: int) -> ShingleSets:
    """Word n-gram shingles of normalised texts, hashed stably.

    Tokens are the space-separated words of the normalised text; each distinct token is hashed
    once with blake2b and n-grams combine token hashes with a fixed mix. A text shorter than n
    words has one shingle made of all its words, so short texts still compare; an empty text
    has none and is never a near duplicate of anything. Texts are tokenised in chunks, which
    keeps the intermediate token arrays to a fraction of the result's size.
    """
    if ngram < 1:
        raise InvalidInputError(f"ngram must be >= 1, got {ngram}")
    if len(norm_texts) <= SHINGLE_CHUNK_DOCS:
        return _shingle_chunk(norm_texts, ngram)
    return ShingleSets.concat(
        [
            _shingle_chunk(norm_texts[lo : lo + SHINGLE_CHUNK_DOCS], ngram)
            for lo in range(0, len(norm_texts), SHINGLE_CHUNK_DOCS)
        ]
    )


def _shingle_chunk(norm_texts: Sequence[str], ngram: int) -> ShingleSets:
    lists = pc.split_pattern(pa.array(norm_texts, type=pa.large_string()), " ")
    tokens = lists.flatten()
    owner = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
    non_empty = pc.not_equal(tokens, "").to_numpy(zero_copy_only=False)
    tokens = tokens.filter(pa.array(non_empty))
    owner = owner[non_empty]
    encoded = pc.dictionary_encode(tokens)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    token_hashes = stable_hash64(encoded.dictionary.to_pylist())[codes]
    n_docs = len(norm_texts)
    if ngram == 1:
        return ShingleSets(_offsets_from_owner(owner, n_docs), token_hashes)
    return _ngram_sets(token_hashes, owner, n_docs, ngram)


def _offsets_from_owner(owner: np.ndarray, n_docs: int) -> np.ndarray:
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_docs), out=offsets[1:])
    return offsets


def _ngram_sets(
    token_hashes: np.ndarray, owner: np.ndarray, n_docs: int, ngram: int
) -> ShingleSets:
    """Windows of ``ngram`` tokens; a window clipped by the end of its text is kept only if it
    starts the text (the text is shorter than n words)."""
    n_tokens = len(token_hashes)
    combined = token_hashes.copy()
    window = np.ones(n_tokens, dtype=np.int64)
    for offset in range(1, ngram):
        following = np.arange(offset, n_tokens + offset)
        inside = following < n_tokens
        inside[inside] = owner[following[inside]] == owner[inside]
        step = mix64(combined * _GOLDEN ^ token_hashes[np.minimum(following, n_tokens - 1)])
        combined = np.where(inside, step, combined)
        window += inside
    starts_text = np.ones(n_tokens, dtype=bool)
    starts_text[1:] = owner[1:] != owner[:-1]
    keep = (window == ngram) | starts_text & (window < ngram) & _text_is_short(owner, ngram)
    return ShingleSets(_offsets_from_owner(owner[keep], n_docs), combined[keep])


def _text_is_short(owner: np.ndarray, ngram: int) -> np.ndarray:
    """Per token: whether its text has fewer than ``ngram`` tokens."""
    counts = np.bincount(owner) if len(owner) else np.zeros(0, dtype=np.int64)
    return counts[owner] < ngram
