"""Results store: append-only, atomically written Parquet shards read through DuckDB views.

The schema is documented in :mod:`mindgap_core.store.schema`; the store API in
:mod:`mindgap_core.store.results`; the queries in :mod:`mindgap_core.store.views`.
"""

from mindgap_core.store.results import ResultsStore, RunInfo, shard_key

__all__ = ["ResultsStore", "RunInfo", "shard_key"]
