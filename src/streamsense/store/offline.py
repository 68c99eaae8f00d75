"""The offline store: Parquet files partitioned by date, queried with DuckDB.

Tables live in folders under one root (``events/<stream>``, ``feature_log``,
``feature_history/<view>``), hive-partitioned by ``date=YYYY-MM-DD`` of their time column.
Writers name files after what they hold (a chunk's first and last source position), so a job
rerun after a crash rewrites the same files instead of adding duplicates.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamsense.errors import ConfigError

DAY_MS = 86_400_000


class OfflineStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, table: str) -> Path:
        if ".." in Path(table).parts:
            raise ConfigError(f"bad table name {table!r}")
        return self.root / table

    def write(self, table: str, rows: pa.Table, *, time_column: str, name: str) -> int:
        """Write ``rows`` into ``table``, one file per date named ``<name>.parquet`` (the
        same name again replaces that file). ``time_column`` holds epoch milliseconds."""
        if rows.num_rows == 0:
            return 0
        days = pc.divide(rows.column(time_column), DAY_MS).to_numpy(zero_copy_only=False)
        days = np.floor(days).astype(np.int64)
        for day in np.unique(days):
            date = np.datetime64(int(day), "D").astype(str)
            folder = self.path(table) / f"date={date}"
            folder.mkdir(parents=True, exist_ok=True)
            part = rows.filter(pa.array(days == day))
            temporary = folder / f".{name}.parquet.tmp"
            pq.write_table(part, temporary, compression="zstd", use_dictionary=_dictionary(part))
            temporary.replace(folder / f"{name}.parquet")  # readers never see half a file
        return int(rows.num_rows)

    def tables(self) -> list[str]:
        found = {
            str(p.parent.parent.relative_to(self.root)) for p in self.root.rglob("date=*/*.parquet")
        }
        return sorted(found)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with a view per table (``/`` in names becomes ``__``)."""
        con = duckdb.connect()
        for table in self.tables():
            pattern = str(self.path(table) / "date=*" / "*.parquet").replace("'", "''")
            view = table.replace("/", "__").replace("-", "_").replace(".", "_")
            con.execute(
                f"CREATE VIEW \"{view}\" AS SELECT * FROM read_parquet('{pattern}',"
                " hive_partitioning = true, union_by_name = true)"
            )
        return con

    def query(self, sql: str) -> pa.Table:
        with self.connect() as con:
            return con.sql(sql).to_arrow_table()

    def read(self, table: str) -> pa.Table:
        view = table.replace("/", "__").replace("-", "_").replace(".", "_")
        return self.query(f'SELECT * FROM "{view}"')


def _dictionary(table: pa.Table) -> list[str] | bool:
    """Dictionary-encode only the text columns. Feature columns are floats with few repeats:
    Parquet's dictionary attempt there costs ~30 % of a feature-history write and, once it
    falls back, leaves files ~25 % larger than plain encoding under zstd."""
    text = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_binary(f.type)
        or pa.types.is_large_binary(f.type)
    ]
    return text or False
