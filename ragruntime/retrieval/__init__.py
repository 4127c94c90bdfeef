"""Retrieval: pure score fusion (hybrid.py) and the query plan over the stores (search.py)."""
