"""How the write path runs its prebuilt statements: through SQLAlchemy Core on any engine, or
on SQLite straight on the sqlite3 cursor, with SQL compiled once from the same Core statements.

Both runners take the same Core statements and parameter dicts, so the write logic exists once.
``CoreRunner`` is the portable one (PostgreSQL, or SQLite with ``echo``). ``SqliteRunner`` skips
SQLAlchemy's per-execution work (about 15 µs a statement, several times SQLite's own cost for an
indexed lookup): each statement is compiled once per set of parameter names, then only a tuple
of values goes to the driver. It runs inside a transaction the Core ``Connection`` began, and
raises the same ``sqlalchemy.exc`` errors as Core would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]


class CoreRunner:
    """Any engine: each statement through ``Connection.execute`` (and its compiled cache)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        pass

    def first(self, stmt: ClauseElement, params: Params) -> Sequence[Any] | None:
        return self.conn.execute(stmt, params).first()

    def column(self, stmt: ClauseElement, params: Params) -> list[Any]:
        """The first column of every row."""
        return list(self.conn.execute(stmt, params).scalars())

    def rows(self, stmt: ClauseElement, params: Params) -> list[Sequence[Any]]:
        return list(self.conn.execute(stmt, params))

    def execute(self, stmt: ClauseElement, params: Params | Sequence[Params]) -> None:
        """One statement, or one per parameter set (a driver executemany; none for [])."""
        if params:
            self.conn.execute(stmt, params)

    def insert(self, stmt: ClauseElement, params: Params) -> int:
        """Insert one row; its new primary key."""
        return self.conn.execute(stmt, params).inserted_primary_key[0]

    def returning(self, stmt: ClauseElement, params: Sequence[Params]) -> list[Sequence[Any]]:
        """The RETURNING rows of a statement run once per parameter set (batched by Core)."""
        return list(self.conn.execute(stmt, list(params)))


class _Compiled:
    """One statement compiled for one set of parameter names."""

    __slots__ = ("compiled", "expanding", "names", "shapes", "sql", "values")

    def __init__(self, compiled: SQLCompiler, given: tuple[str, ...], dialect: Dialect) -> None:
        self.compiled = compiled
        self.sql = compiled.string
        names = list(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]
        self.names = names
        self.expanding = [name for name, bind in zip(names, binds, strict=True) if bind.expanding]
        # Expanded SQL by the lengths of the IN lists (None: expand each time, see expand()).
        self.shapes: dict[tuple[int, ...], str | None] = {}
        # Bind processors (e.g. Boolean -> 0/1) are applied as Core would; a parameter that is
        # not given takes its bound value (a literal), as Core's construct_params does.
        processors = [bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds]
        constants = {
            i: bind.effective_value for i, bind in enumerate(binds) if bind.key not in given
        }
        self.values = _values_getter(names, processors, constants)

    def expand(self, params: Params) -> tuple[str, Sequence[Any]]:
        """SQL and values for this statement with its IN lists as long as in ``params``."""
        shape = tuple(len(params[name]) for name in self.expanding)
        sql = self.shapes.get(shape, "")
        if sql:
            return sql, self._flat_values(params)
        state = self.compiled.construct_expanded_state(params)
        if sql == "":
            # First time at this shape: keep its SQL if the simple layout gives Core's values
            # (not so for lists of tuples, or bind processors: those expand every time).
            same = list(state.positional_parameters) == self._flat_values(params)
            self.shapes[shape] = state.statement if same else None
        return state.statement, state.positional_parameters

    def _flat_values(self, params: Params) -> list[Any]:
        # A list's items stand in place of its one placeholder, in order.
        values: list[Any] = []
        for name in self.names:
            if name in self.expanding:
                values.extend(params[name])
            else:
                values.append(params[name])
        return values


def _values_getter(
    names: list[str],
    processors: list[Callable[[Any], Any] | None],
    constants: dict[int, Any],
) -> Callable[[Params], tuple[Any, ...]]:
    if any(processors) or constants:

        def values(params: Params) -> tuple[Any, ...]:
            out = []
            for i, (name, process) in enumerate(zip(names, processors, strict=True)):
                value = constants[i] if i in constants else params[name]
                out.append(process(value) if process else value)
            return tuple(out)

        return values
    if not names:
        return lambda params: ()
    if len(names) == 1:
        name = names[0]
        return lambda params: (params[name],)
    return itemgetter(*names)


class SqliteCompiledCache:
    """Compiled forms of an archive's statements, by statement and parameter names.

    Owned by one ``Archive``; its statements live as long as it does. Plain dict reads and
    writes: safe enough for the single writer thread it serves (a race only compiles twice).
    """

    def __init__(self, dialect: Dialect) -> None:
        if not dialect.positional:
            raise ValueError("SqliteRunner needs a positional paramstyle (qmark)")
        self.dialect = dialect
        self._cache: dict[tuple[int, tuple[str, ...]], _Compiled] = {}

    def get(self, stmt: ClauseElement, params: Params) -> _Compiled:
        names = tuple(params)
        key = (id(stmt), names)
        compiled = self._cache.get(key)
        if compiled is None:
            # column_keys: an INSERT or UPDATE writes exactly the columns it is given, as in Core.
            sql_compiled = cast(
                SQLCompiler, stmt.compile(dialect=self.dialect, column_keys=list(names))
            )
            compiled = self._cache[key] = _Compiled(sql_compiled, names, self.dialect)
        return compiled


class SqliteRunner:
    """SQLite: the same statements, compiled once to ``?`` SQL, run on the sqlite3 cursor.

    Runs inside the transaction of ``conn`` (which issued BEGIN IMMEDIATE); commit and rollback
    stay with it. Driver errors become the ``sqlalchemy.exc`` errors Core would raise.
    """

    def __init__(self, conn: Connection, cache: SqliteCompiledCache) -> None:
        self._cursor: Any = conn.connection.cursor()  # the sqlite3 cursor itself
        self._cache = cache
        self._error: type[Exception] = cache.dialect.loaded_dbapi.Error

    def close(self) -> None:
        self._cursor.close()

    def _run(self, stmt: ClauseElement, params: Params) -> Any:
        compiled = self._cache.get(stmt, params)
        if compiled.expanding:  # an IN list: its placeholders depend on the list's length
            sql, values = compiled.expand(params)
        else:
            sql, values = compiled.sql, compiled.values(params)
        try:
            return self._cursor.execute(sql, values)
        except self._error as exc:
            raise self._wrap(sql, values, exc) from exc

    def _wrap(self, sql: str, values: Any, exc: Exception) -> Exception:
        return DBAPIError.instance(sql, values, exc, self._error, dialect=self._cache.dialect)

    # Every result is read to its end (fetchall): the driver then resets the statement, so none
    # is left half-run at COMMIT. The write path's results are a few rows at most.

    def first(self, stmt: ClauseElement, params: Params) -> Sequence[Any] | None:
        rows = self._run(stmt, params).fetchall()
        return rows[0] if rows else None

    def column(self, stmt: ClauseElement, params: Params) -> list[Any]:
        return [row[0] for row in self._run(stmt, params).fetchall()]

    def rows(self, stmt: ClauseElement, params: Params) -> list[Sequence[Any]]:
        return self._run(stmt, params).fetchall()

    def execute(self, stmt: ClauseElement, params: Params | Sequence[Params]) -> None:
        if isinstance(params, Mapping):
            self._run(stmt, params)
            return
        if not params:
            return
        compiled = self._cache.get(stmt, params[0])
        if compiled.expanding:
            raise ValueError("an IN list cannot be run once per parameter set")
        values = [compiled.values(p) for p in params]
        try:
            self._cursor.executemany(compiled.sql, values)
        except self._error as exc:
            raise self._wrap(compiled.sql, values, exc) from exc

    def insert(self, stmt: ClauseElement, params: Params) -> int:
        return self._run(stmt, params).lastrowid

    def returning(self, stmt: ClauseElement, params: Sequence[Params]) -> list[Sequence[Any]]:
        # sqlite3's executemany returns no rows: one execute per row (each a few µs here).
        out: list[Sequence[Any]] = []
        for p in params:
            out.extend(self._run(stmt, p).fetchall())
        return out
