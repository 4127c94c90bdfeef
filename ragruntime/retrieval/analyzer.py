"""The English analyzer of the in-process BM25 index: words, lower case, no stopwords, stemmed.

``analyze("Flows over swept wings")`` -> ``["flow", "swept", "wing"]``. Words are runs of
letters/digits; each CJK character is a word of its own (no segmentation, as before). Stemming is
Snowball English (PyStemmer, a C extension with its own cache), so "flows", "flowing" and "flow"
share one posting list. Used by ``ragruntime.retrieval.index`` for documents and queries alike.
"""

from __future__ import annotations

import re
import threading

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

_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """One stemmer per thread: PyStemmer objects are not safe to share between threads."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def words(text: str) -> list[str]:
    """Lower-cased words without stopwords (all words if the text has only stopwords)."""
    found = [w.lower() for w in WORD_RE.findall(text)]
    kept = [w for w in found if w not in STOPWORDS]
    return kept or found


def analyze(text: str) -> list[str]:
    """The index terms of ``text``: ``words`` stemmed with Snowball English."""
    found = words(text)
    return _stemmer().stemWords(found) if found else []
