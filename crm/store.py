"""The SQL store: engine from a URL, fast reads into Polars, transactional writes.

Reads pick the fastest reliable path per dialect, measured in bench/RESULTS.md
(1M rows: ADBC 1.38M rows/s on PostgreSQL, connectorx 1.40M rows/s on SQLite,
SQLAlchemy about 0.3M on both) and fall back to ``pl.read_database`` over
SQLAlchemy. Every read is cast to the canonical Polars schema, so callers see
the same dtypes whatever the path. Writes happen inside one transaction that
also bumps the data version, so the store is never left half-written.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from crm import schema

log = logging.getLogger(__name__)

_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%6f"
_SQLITE_BULK_CACHE_KIB = 65_536
"""Page cache of a SQLite connection while it inserts a frame (the default is 2 MiB): the rows of a large
insert land all over an index (created_at, or a key in no order), and with a small cache every insert evicts
index pages that the next ones read back, or spills them to the file (bench/RESULTS.md, issue 10)."""
_SQLITE_MAX_PARAMS = 999
"""Parameters in one SQLite statement: the limit of SQLite before 3.32 (32,766 since)."""
_SQLITE_REBUILD_ROWS = 50_000
"""Inserts of at least this many rows into a smaller SQLite table build its secondary indexes afterwards."""


class StoreError(Exception):
    """The store cannot be reached or used; the message is meant for a person."""


@dataclass(frozen=True)
class ReadResult:
    """A table read into Polars and how it was read (for benchmarks and logs)."""

    frame: pl.DataFrame
    path: str


def _describe(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


TABLE_STAMP = "table_stamp:"
"""crm_meta key prefix of the per-table stamps (``table_stamp:tickets``)."""


SQLITE_BUSY_SECONDS = 30.0
"""How long a SQLite connection waits for another's lock before "database is locked"."""


class Store:
    """One SQL store reached through SQLAlchemy."""

    def __init__(self, url: str) -> None:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise StoreError(f"not a database URL: {url!r}") from None
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if (parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:"
                and not parsed.database.startswith("file:")):  # a URI filename (?mode=ro&uri=true) names an existing file
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {folder} for the SQLite store: {exc.strerror or exc}") from None
        self.url = parsed
        # SQLite: wait for another connection's write lock up to SQLITE_BUSY_SECONDS, not Python's 5 s (twenty
        # sessions at once in one server queued past 5 s behind each other's writes: "database is locked")
        connect_args = {"timeout": SQLITE_BUSY_SECONDS} if parsed.get_backend_name() == "sqlite" else {}
        try:
            self.engine: Engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot open {_describe(parsed)}: {exc}") from None

    def close(self) -> None:
        """Close the pooled connections (a CLI run or a test is done with the store)."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, ..."""
        return self.url.get_backend_name()

    def describe(self) -> str:
        """The URL without its password, for messages."""
        return _describe(self.url)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection; an unreachable database becomes a StoreError."""
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(f"cannot reach the database {self.describe()}: {reason}") from None
        with conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.connect() as conn, conn.begin():
            yield conn

    # --- schema and version -------------------------------------------------

    def ensure_schema(self) -> None:
        """Create every canonical table that is missing (idempotent)."""
        with self.transaction() as conn:
            schema.metadata.create_all(conn, checkfirst=True)
            _add_missing_columns(conn)
            exists = conn.execute(
                sa.select(schema.crm_meta.c.value).where(schema.crm_meta.c.key == "data_version")
            ).first()
            if exists is None:
                conn.execute(schema.crm_meta.insert().values(key="data_version", value="0"))
            have = set(conn.execute(sa.select(schema.crm_meta.c.key)).scalars())
            fresh = uuid.uuid4().hex  # a stamp no snapshot holds: whatever these tables hold is read again
            for key in ("data_stamp", *(f"{TABLE_STAMP}{t}" for t in schema.BUSINESS_TABLES)):
                if key not in have:
                    conn.execute(schema.crm_meta.insert().values(key=key, value=fresh))

    def has_schema(self) -> bool:
        """True when the store has the canonical tables (checked by the meta table)."""
        with self.connect() as conn:
            return sa.inspect(conn).has_table("crm_meta")

    def data_version(self) -> int:
        """The counter bumped by every change of business data (0 for a new store)."""
        with self.connect() as conn:
            if not sa.inspect(conn).has_table("crm_meta"):
                return 0
            value = conn.execute(
                sa.select(schema.crm_meta.c.value).where(schema.crm_meta.c.key == "data_version")
            ).scalar()
        return int(value or 0)

    def data_state(self) -> tuple[int, str | None]:
        """The data version and its stamp: a random token every version bump writes, so a (version, stamp)
        pair names one state of the data even across a restored backup or a re-created store (a prepared
        snapshot is keyed by it, crm.snapshot). The stamp is None for a store without one yet."""
        with self.connect() as conn:
            if not sa.inspect(conn).has_table("crm_meta"):
                return 0, None
            rows = {key: value for key, value in conn.execute(
                sa.select(schema.crm_meta.c.key, schema.crm_meta.c.value)
                .where(schema.crm_meta.c.key.in_(["data_version", "data_stamp"]))
            )}
        return int(rows.get("data_version") or 0), rows.get("data_stamp")

    @staticmethod
    def bump_version(conn: Connection, tables: Iterable[str] | None = None) -> int:
        """Increase the data version inside the caller's transaction (with a new stamp); returns the new value.

        ``tables``: the business tables the change wrote (each gets a new table stamp, so a reload re-reads
        only those, crm.snapshot); None: every table may have changed."""
        meta = schema.crm_meta
        current = conn.execute(
            sa.select(meta.c.value).where(meta.c.key == "data_version")
        ).scalar()
        new = int(current or 0) + 1
        stamp = uuid.uuid4().hex
        changed = schema.BUSINESS_TABLES if tables is None else tuple(dict.fromkeys(tables))
        values = {"data_version": str(new), "data_stamp": stamp, **{f"{TABLE_STAMP}{t}": stamp for t in changed}}
        for key, value in values.items():
            if conn.execute(meta.update().where(meta.c.key == key).values(value=value)).rowcount == 0:
                conn.execute(meta.insert().values(key=key, value=value))
        return new

    def table_stamps(self) -> dict[str, str]:
        """Each business table's stamp: renewed by every version bump that wrote the table (empty for a
        store from before table stamps: then no table counts as unchanged)."""
        with self.connect() as conn:
            if not sa.inspect(conn).has_table("crm_meta"):
                return {}
            rows = conn.execute(sa.select(schema.crm_meta.c.key, schema.crm_meta.c.value)
                                .where(schema.crm_meta.c.key.startswith(TABLE_STAMP)))
            return {key[len(TABLE_STAMP):]: value for key, value in rows}

    def column_names(self, names: Iterable[str]) -> dict[str, set[str]]:
        """The columns each named table has in the store (an empty set for a table it lacks)."""
        with self.connect() as conn:
            inspector = sa.inspect(conn)
            return {name: {c["name"] for c in inspector.get_columns(name)} if inspector.has_table(name) else set()
                    for name in names}

    def row_count(self, name: str) -> int:
        """Rows in a canonical table (0 when it does not exist)."""
        with self.connect() as conn:
            if not sa.inspect(conn).has_table(name):
                return 0
            return int(conn.execute(sa.select(sa.func.count()).select_from(schema.table(name))).scalar() or 0)

    # --- reads --------------------------------------------------------------

    def _connectorx_url(self) -> str | None:
        if self.dialect == "sqlite":
            database = self.url.database
            if not database or database == ":memory:":
                return None
            return f"sqlite://{Path(database).resolve()}"
        if self.dialect == "postgresql":
            return self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return None

    def read_table(
        self,
        name: str,
        columns: list[str] | None = None,
        where: Iterable[sa.ColumnElement[bool]] = (),
        path: str = "auto",
    ) -> ReadResult:
        """Read ``columns`` of a canonical table into Polars, cast to the canonical dtypes.

        ``where`` pushes row conditions into SQL (bound parameters); ``path`` is
        ``auto`` (the fastest that works: ADBC on PostgreSQL, connectorx on SQLite files,
        then SQLAlchemy), ``adbc`` (PostgreSQL), ``connectorx`` or ``sqlalchemy``.
        """
        table = schema.table(name)
        wanted = columns or [c.name for c in table.columns]
        target = schema.polars_schema(name, wanted)
        query = sa.select(*[table.c[c] for c in wanted])
        for condition in where:
            query = query.where(condition)
        if path in ("auto", "adbc") and self.dialect == "postgresql":  # the fastest on PostgreSQL (bench/RESULTS.md)
            try:
                return ReadResult(self._read_adbc(query, target), "adbc")
            except Exception as exc:
                log.warning("ADBC read of %s failed (%s); using connectorx", name, exc)
        if path in ("auto", "connectorx", "adbc"):
            cx_url = self._connectorx_url()
            if cx_url is not None:
                try:
                    return ReadResult(self._read_connectorx(cx_url, query, target), "connectorx")
                except Exception as exc:
                    if path == "connectorx":
                        raise StoreError(f"connectorx could not read {name}: {exc}") from None
                    log.warning("connectorx read of %s failed (%s); using SQLAlchemy", name, exc)
        return ReadResult(self._read_sqlalchemy(query, target), "sqlalchemy")

    def read(self, name: str, columns: list[str] | None = None) -> pl.DataFrame:
        """Shorthand for ``read_table(...).frame``."""
        return self.read_table(name, columns).frame

    def read_batches(self, name: str, columns: list[str], rows: int = 1_000_000) -> Iterator[pl.DataFrame]:
        """``columns`` of a canonical table in pieces of ``rows`` rows (the last may be shorter), in the canonical dtypes, each
        read when the caller asks for the next: memory for one piece, not the table. Streamed by ADBC on
        PostgreSQL, else SQLAlchemy (a server-side cursor where the driver has one; sqlite3 on SQLite).
        Every row comes exactly once, in no particular order."""
        table = schema.table(name)
        target = schema.polars_schema(name, columns)
        query = sa.select(*[table.c[c] for c in columns])
        if self.dialect == "postgresql":
            import adbc_driver_postgresql.dbapi as adbc

            uri = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            with adbc.connect(uri) as conn, conn.cursor() as cursor:
                cursor.execute(self._compile(query))
                yield from _pieces(cursor.fetch_record_batch(), rows, target)
            return
        # Not connectorx on SQLite: these reads run in a background thread while the app may write, and
        # connectorx brings its own copy of SQLite, whose file locks the process's sqlite3 does not see (two
        # copies of SQLite in one process break each other's locks; the tests saw "disk I/O error").
        if self.dialect == "sqlite":
            pieces = self._sqlite_pieces(table, columns, rows, target)
            first = next(pieces, None)
            if first is not None:  # None: a table without rowid; read it as one stream below
                yield first
                yield from pieces
                return
        with self.connect() as conn:
            streamed = conn.execution_options(stream_results=True, yield_per=rows)
            for piece in pl.read_database(query, streamed, iter_batches=True, batch_size=rows,
                                          infer_schema_length=None):
                yield _conform(piece, target)

    def _sqlite_pieces(self, table: sa.Table, columns: list[str], rows: int,
                       target: Mapping[str, pl.DataType]) -> Iterator[pl.DataFrame]:
        """A SQLite table's pieces in rowid order, each read by its own statement: one open cursor over a
        whole table holds SQLite's shared lock until its last row, so a write (an import, a sign-in) waited
        for the whole table, past its busy timeout. Between pieces no lock is held; a write in between is
        seen by the later pieces (the reader keys what it finds to the data version it started from, and
        the next version's read corrects it). Nothing for a table without rowid (WITHOUT ROWID)."""
        rowid: sa.ColumnClause[Any] = sa.literal_column("rowid")
        last: int | None = None
        while True:
            query = sa.select(rowid.label("_rowid"), *[table.c[c] for c in columns]).order_by(rowid).limit(rows)
            if last is not None:
                query = query.where(rowid > last)
            try:
                with self.connect() as conn:
                    piece = pl.read_database(query, conn, infer_schema_length=None)
            except sa.exc.OperationalError as exc:
                if last is None and "rowid" in str(exc.orig):
                    return
                raise
            if piece.is_empty():
                if last is None:
                    yield _conform(piece.drop("_rowid"), target)
                return
            last = int(piece["_rowid"][-1])
            yield _conform(piece.drop("_rowid"), target)
            if piece.height < rows:
                return

    def read_select(self, query: sa.Select, target: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """The rows of a small query (a few columns, few rows) cast to ``target``, through SQLAlchemy."""
        return self._read_sqlalchemy(query, target)

    def _compile(self, query: sa.Select) -> str:
        return str(query.compile(self.engine, compile_kwargs={"literal_binds": True}))

    def _read_connectorx(self, cx_url: str, query: sa.Select, target: Mapping[str, pl.DataType]) -> pl.DataFrame:
        import connectorx as cx

        frame = cx.read_sql(cx_url, self._compile(query), return_type="polars")
        assert isinstance(frame, pl.DataFrame)
        return _conform(frame, target)

    def _read_adbc(self, query: sa.Select, target: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """PostgreSQL through the ADBC driver: Arrow record batches, native timestamps and dates."""
        import adbc_driver_postgresql.dbapi as adbc

        uri = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with adbc.connect(uri) as conn:
            frame = pl.read_database(self._compile(query), conn)
        return _conform(frame, target)

    def _read_sqlalchemy(self, query: sa.Select, target: Mapping[str, pl.DataType]) -> pl.DataFrame:
        with self.connect() as conn:
            try:
                frame = pl.read_database(query, conn, infer_schema_length=None)
            except sa.exc.DBAPIError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                tables = ", ".join(str(getattr(f, "name", f)) for f in query.get_final_froms())
                raise StoreError(f"cannot read {tables} from {self.describe()}: {reason}") from None
        return _conform(frame, target)

    # --- writes -------------------------------------------------------------

    def insert_frame(self, conn: Connection, name: str, frame: pl.DataFrame) -> None:
        """Append a frame's rows to a canonical table inside the caller's transaction."""
        if frame.height == 0:
            return
        table = schema.table(name)
        cols = [c.name for c in table.columns if c.name in frame.columns]
        frame = _conform(frame.select(cols), schema.polars_schema(name, cols))
        dialect = conn.dialect.name
        if dialect == "postgresql":
            _copy_postgresql(conn, name, frame)
        elif dialect == "sqlite":
            _insert_sqlite(conn, name, frame)
        else:
            conn.execute(table.insert(), frame.to_dicts())

    @contextmanager
    def bulk_insert(self, conn: Connection, name: str, rows: int) -> Iterator[None]:
        """Around the ``insert_frame`` calls that add ``rows`` rows to table ``name`` in the caller's transaction.

        On SQLite, when that is a bulk load (at least ``_SQLITE_REBUILD_ROWS`` rows, more than the table
        holds), the table's plain secondary indexes (made by CREATE INDEX, not unique) are dropped first
        and made again from their own statements at the end: one sort instead of a B-tree insert per row,
        about a third of the time SQLite takes for 1M opportunities (bench/RESULTS.md, issue 10). The
        schema afterwards is the same; an error undoes both with the transaction. Elsewhere it does
        nothing (on PostgreSQL, DROP INDEX would shut readers out until the commit).
        """
        if conn.dialect.name != "sqlite" or rows < _SQLITE_REBUILD_ROWS:
            yield
            return
        largest = conn.exec_driver_sql(f'SELECT max(rowid) FROM "{name}"').scalar()  # >= its row count, read in O(log n)
        plain = [r[1] for r in conn.exec_driver_sql(f'PRAGMA index_list("{name}")').all() if r[2] == 0 and r[3] == "c"]
        if (largest is not None and largest >= rows) or not plain:
            yield
            return
        found = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (name,)).all()
        statements = [(index, sql) for index, sql in found if index in plain and sql]
        for index, _ in statements:
            conn.exec_driver_sql(f'DROP INDEX "{index}"')
        yield
        for _, sql in statements:
            conn.exec_driver_sql(sql)

    def replace_business_data(self, frames: Mapping[str, pl.DataFrame]) -> int:
        """Replace every business table with ``frames`` in one transaction; new data version."""
        self.ensure_schema()
        with self.transaction() as conn:
            for name in reversed(schema.BUSINESS_TABLES):
                conn.execute(schema.table(name).delete())
            # the imports' rows are gone with everything else: none of them can be undone any more
            batches = schema.import_batches
            conn.execute(batches.update().where(batches.c.status.in_(["loaded", "partial"]), batches.c.undone_at.is_(None))
                         .values(status="superseded"))
            conn.execute(schema.import_superseded.delete())
            for name in schema.BUSINESS_TABLES:
                if name in frames:
                    self.insert_frame(conn, name, frames[name])
            return self.bump_version(conn)


def _add_missing_columns(conn: Connection) -> None:
    """Add the nullable columns a newer schema has to the tables of an older store (ALTER TABLE ADD COLUMN)."""
    inspector = sa.inspect(conn)
    for table in schema.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN {spec}'))


def _pieces(reader: Iterable[Any], rows: int, target: Mapping[str, pl.DataType]) -> Iterator[pl.DataFrame]:
    """Arrow record batches as frames of ``rows`` rows (the last may be shorter), cast to ``target``."""
    held: list[pl.DataFrame] = []
    count = 0
    for batch in reader:
        piece = pl.from_arrow(batch)
        assert isinstance(piece, pl.DataFrame)
        held.append(_conform(piece, target))
        count += piece.height
        while count >= rows:
            gathered = pl.concat(held, rechunk=False)
            yield gathered.slice(0, rows)
            rest = gathered.slice(rows)
            held, count = [rest], rest.height
    if count:
        yield pl.concat(held, rechunk=False)


def _conform(frame: pl.DataFrame, target: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Cast columns to the canonical dtypes (text timestamps parsed, ints from floats)."""
    exprs = []
    for name, dtype in target.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        col = pl.col(name)
        current = frame.schema[name]
        if current == dtype:
            exprs.append(col)
        elif isinstance(dtype, pl.Datetime) and current == pl.String:
            exprs.append(col.str.to_datetime(time_unit="us", strict=True).alias(name))
        elif isinstance(dtype, pl.Date) and current == pl.String:
            exprs.append(col.str.to_date(strict=True).alias(name))
        else:
            exprs.append(col.cast(dtype).alias(name))
    return frame.select(exprs)


def _insert_sqlite(conn: Connection, name: str, frame: pl.DataFrame) -> None:
    """executemany of INSERTs of many rows each (VALUES (...), (...), ...), timestamps in SQLAlchemy's SQLite
    text format. A statement per row costs as much again in Python and SQLite as binding its values."""
    if frame.height == 0 or frame.width == 0:
        return
    text_frame = frame.with_columns(
        [pl.col(c).dt.strftime(_SQLITE_TS) for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if isinstance(t, pl.Date)]
    )
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    row = "(" + ", ".join("?" for _ in frame.columns) + ")"
    insert = f'INSERT INTO "{name}" ({cols}) VALUES '
    per = max(1, _SQLITE_MAX_PARAMS // frame.width)  # rows per statement
    width = per * frame.width
    many = insert + ", ".join([row] * per)
    raw = conn.connection.driver_connection
    assert raw is not None, "a live SQLAlchemy connection has a DBAPI connection"
    cursor = raw.cursor()
    with _sqlite_cache(cursor, _SQLITE_BULK_CACHE_KIB):
        for chunk in text_frame.iter_slices(200_000):
            values: list[Any] = [None] * (chunk.height * chunk.width)  # the rows' values one after another
            for j, column in enumerate(chunk.get_columns()):
                values[j::chunk.width] = column.to_list()
            whole = chunk.height // per * per
            cursor.executemany(many, (values[i:i + width] for i in range(0, whole * chunk.width, width)))
            if whole < chunk.height:
                cursor.executemany(insert + row, chunk.slice(whole).rows())


@contextmanager
def _sqlite_cache(cursor: Any, kib: int) -> Iterator[None]:
    """The connection's page cache raised to at least ``kib`` KiB, and set back after (cached pages are freed;
    pages the transaction changed stay until it ends, as they would anyway)."""
    previous = int(cursor.execute("PRAGMA cache_size").fetchone()[0])
    page = int(cursor.execute("PRAGMA page_size").fetchone()[0])
    if (-previous if previous < 0 else previous * page // 1024) >= kib:
        yield
        return
    cursor.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA cache_size = {previous}")


def _copy_postgresql(conn: Connection, name: str, frame: pl.DataFrame) -> None:
    """COPY FROM STDIN in CSV form: about ten times faster than executemany."""
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    raw = conn.connection.driver_connection
    assert raw is not None, "a live SQLAlchemy connection has a DBAPI connection"
    with raw.cursor() as cursor:
        with cursor.copy(f'COPY "{name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            for chunk in frame.iter_slices(200_000):
                buffer = io.BytesIO()
                chunk.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f")
                copy.write(buffer.getvalue())
