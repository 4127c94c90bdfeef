"""A quantised pre-filter for the dense scan of large segments: int8 candidates, exact rerank.

The exact dense scan reads every float32 vector of a segment (1.5 KB per 384-d row), so at a
million rows it is bound by memory bandwidth. Above ``MIN_ROWS`` a segment also keeps its vectors
as 8-bit scalar-quantised codes (faiss ``IndexScalarQuantizer`` QT_8bit, inner product: a
quarter of the bytes, SIMD decoding); a query scans the codes for its ``RERANK_FACTOR * k``
best candidates and re-scores only those exactly in float32. The returned cosines are exact;
only a row whose quantised score falls below the candidate cut can be missed (measured recall
against the exact scan is in docs/benchmarks.md; adopted because it stays ≥ 0.99 at 100).
Below ``MIN_ROWS`` the exact scan is cheap and stays the only path.
"""

from __future__ import annotations

import threading

import faiss
import numpy as np
import numpy.typing as npt

MIN_ROWS = 50_000
RERANK_FACTOR = 2
MIN_CANDIDATES = 2048

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_threads_set = threading.Lock()
_configured = False


def _single_threaded() -> None:
    """One OpenMP thread for faiss: a retrieval runs on one core (search_slots bound them)."""
    global _configured
    with _threads_set:
        if not _configured:
            faiss.omp_set_num_threads(1)
            _configured = True


class QuantizedScan:
    """SQ8 codes of a segment's vectors; ``candidates`` returns rows worth an exact score."""

    def __init__(self, vectors: Floats) -> None:
        _single_threaded()
        self._codes = faiss.IndexScalarQuantizer(
            vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        self._codes.train(vectors)
        self._codes.add(vectors)

    @property
    def nbytes(self) -> int:
        return int(self._codes.ntotal * self._codes.code_size)

    def candidates(self, query: Floats, k: int, eligible: Bools | None) -> Ints:
        """Up to ``max(RERANK_FACTOR * k, MIN_CANDIDATES)`` rows by quantised score."""
        wanted = min(max(RERANK_FACTOR * k, MIN_CANDIDATES), self._codes.ntotal)
        parameters = None
        bitmap = None  # kept alive until the search returns: faiss reads it in place
        if eligible is not None:
            bitmap = np.packbits(eligible, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            parameters = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        _, rows = self._codes.search(
            np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), wanted, params=parameters
        )
        del bitmap
        found = rows[0]
        return found[found >= 0].astype(np.int64)
