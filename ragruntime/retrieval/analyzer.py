"""The English analyzer of the in-process BM25 index: words, lower case, no stopwords, stemmed.

``analyze("Flows over swept wings")`` -> ``["flow", "swept", "wing"]``. Words are runs of
letters/digits; each CJK character is a word of its own (no segmentation, as before). Stemming is
Snowball English (PyStemmer, a C extension with its own cache), so "flows", "flowing" and "flow"
share one posting list. Used by ``ragruntime.retrieval.index`` for documents and queries alike.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import Stemmer

WORD_RE = re.compile(r"[A-Za-z0-9_]+|[\u4e00-\u9fff]")
STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have",
        "how", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the",
        "their", "there", "these", "this", "to", "was", "what", "when", "where", "which", "who",
        "why", "will", "with", "you", "can", "do", "does", "been", "were", "not", "no", "such",
        "than", "then", "they", "so", "any", "some", "may", "should", "would", "could",
    }
)  # fmt: skip

STEM_CACHE_SIZE = 500_000

_local = threading.local()
_stems: dict[str, str] = {}


def _stemmer() -> Stemmer.Stemmer:
    """One stemmer per thread: PyStemmer objects are not safe to share between threads."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def _stem(word: str) -> str:
    """Snowball stem of ``word``, memoised (a vocabulary is small; texts repeat words)."""
    stem = _stems.get(word)
    if stem is None:
        stem = _stemmer().stemWord(word)
        if len(_stems) < STEM_CACHE_SIZE:
            _stems[word] = stem
    return stem


def words(text: str) -> list[str]:
    """Lower-cased words without stopwords (all words if the text has only stopwords)."""
    found = WORD_RE.findall(text.lower())
    kept = [w for w in found if w not in STOPWORDS]
    return kept or found


def analyze(text: str) -> list[str]:
    """The index terms of ``text``: ``words`` stemmed with Snowball English."""
    return [_stem(w) for w in words(text)]


def term_counts(text: str) -> Counter[str]:
    """``Counter(analyze(text))``, computed per distinct word (the indexing hot path)."""
    found = Counter(WORD_RE.findall(text.lower()))
    kept = {w: n for w, n in found.items() if w not in STOPWORDS} or found
    counts: Counter[str] = Counter()
    for word, count in kept.items():
        counts[_stem(word)] += count
    return counts
