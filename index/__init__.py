"""The index: one store interface (:class:`index.base.Store`), SQLite/FTS5 as the default backend."""
from index.base import Store
from index.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store"]
