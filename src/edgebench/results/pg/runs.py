"""Runs on the server: written as they go, read, found, and the history queries of the folder's index.

**Order.** Runs are ordered by their start time (``started``, the run's ISO text, as the folder's
index orders them), then by ``committed`` (the server's clock when the run was first stored,
kept by later writes), then by run id. ``latest`` is the last run in that order and ``latest~N``
the N-th before it; `list_runs`, `runs_by` and `history` use the same order. With many
writers this is well defined: two runs that started in the same second are ordered by which
was stored first, and a run's place never changes once stored. It is the folder's order
(run ids begin with the start time) except for runs started in the same second (the folder:
the id's random suffix) or with ids that do not begin with their start time; `push` stores
a folder's runs in its order, so a pushed history keeps it.

**Writing** (`save_run`) replaces the run's document and its measurement rows in one
transaction, so a reader sees a run as one of the states it was saved in, never between;
saving the same run again is harmless. Only the run's own row is locked, never a global lock.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from edgebench.errors import RunNotFound, UserError
from edgebench.model import ConfigKey, Run
from edgebench.results.index import METRICS, row_of
from edgebench.results.pg.conn import (
    NoWriteRights,
    PgStore,
    ResultsServerError,
    ServerUnreachable,
    connect_error,
    psycopg_module,
    scrub,
)
from edgebench.results.pg.migrations import NS, SCHEMA_VERSION, commit_columns, migrate, schema_version, too_new
from edgebench.results.schema import SchemaError, upgrade_run

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
ORDER = "u.started, u.committed, u.run_id"
ORDER_DESC = "u.started DESC, u.committed DESC, u.run_id DESC"


def open_store(url: str, *, read_only: bool = False) -> PgStore:
    """Connect to the results store at ``url`` and check it: THE way to get a `PgStore`.

    A writing store upgrades the database's schema when it is older (creating the tables
    in an empty database) and checks the user's rights on the tables now, so that a run
    fails in one line before it measures. A read-only store opens a read-only session; an
    empty database reads as a store without runs.

    Raises:
        MissingDependency: psycopg is not installed (naming ``edgebench[postgres]``).
        ServerUnreachable: the server cannot be reached.
        NoWriteRights: a writing store whose user may only read.
        SchemaTooNew: the database was written by a newer edgebench.
        ResultsServerError: any other reason (malformed URL, refused password, no database, old server...).
    """
    store = PgStore(url, read_only=read_only)
    try:
        conn = store.connection()
        if read_only:
            store.version = schema_version(conn)
            if store.version > SCHEMA_VERSION:
                raise too_new(str(store), store.version)
            if 0 < store.version < SCHEMA_VERSION:
                raise ResultsServerError(
                    f"{store}: the results database has schema version {store.version}, older than this edgebench's "
                    f"{SCHEMA_VERSION}: run one writing command (a run, or `edgebench results push`) against it as a "
                    "user who may write, and it is upgraded in place"
                )
        else:
            migrate(conn, str(store))
            store.version = SCHEMA_VERSION
            _check_write_rights(store, conn)
    except BaseException as exc:
        store.close()
        pg_mod = psycopg_module(url)
        if isinstance(exc, pg_mod.OperationalError):  # the server went away while being checked
            raise connect_error(exc, url) from None
        raise
    return store


def _check_write_rights(store: PgStore, conn: psycopg.Connection[Any]) -> None:
    need = [("runs", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE")] + [
        ("rows", p) for p in ("SELECT", "INSERT", "DELETE")
    ]
    sql = " UNION ALL ".join(f"SELECT '{t} {p}' WHERE NOT has_table_privilege('{NS}.{t}', '{p}')" for t, p in need)
    missing = [r[0] for r in conn.execute(sql.encode()).fetchall()]
    if missing:
        user = conn.info.user
        raise NoWriteRights(
            f"{store}: user {user!r} may not write results here (no {', '.join(missing)}): ask the database's owner "
            f"to GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {NS} TO {user} (and USAGE ON SCHEMA "
            f"{NS}), or write to a results folder; read-only commands work as they are"
        )


def _first(exc: BaseException, store: PgStore) -> str:
    return " ".join(scrub(str(exc), store.url).strip().split("\n")[0].split())


def transact(store: PgStore, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
    """``fn(conn)`` inside one transaction (READ ONLY for a read-only store), errors as one line.

    A connection that broke (the server restarted, a network blip) is made again and the
    transaction tried once more; the second failure is `ServerUnreachable`.
    """
    pg_mod = psycopg_module(store.url)
    for attempt in (1, 2):
        try:
            conn = store.connection()
        except ServerUnreachable:
            raise
        except ResultsServerError as exc:  # it was there when the store was opened: now it is lost
            raise ServerUnreachable(f"lost the results server: {exc}") from None
        try:
            with conn.transaction():
                return fn(conn)
        except (pg_mod.errors.InsufficientPrivilege, pg_mod.errors.ReadOnlySqlTransaction) as exc:
            why = "it was opened read-only" if store.read_only else _first(exc, store)
            raise NoWriteRights(
                f"{store}: cannot write results ({why}): write with a user who may (GRANT INSERT, UPDATE, DELETE ON "
                f"ALL TABLES IN SCHEMA {NS}), or to a results folder"
            ) from None
        except pg_mod.OperationalError as exc:
            if not (conn.broken or conn.closed):
                raise ResultsServerError(f"{store}: the server refused the work ({_first(exc, store)})") from None
            if attempt == 2:
                err = connect_error(exc, store.url)
                if isinstance(err, ServerUnreachable) or "closed" in str(exc).lower():
                    raise ServerUnreachable(
                        f"{store}: lost the results server ({_first(exc, store)}): check that it runs and is reachable"
                    ) from None
                raise err from None
    raise AssertionError("unreachable")  # pragma: no cover


def run_text(run: Run) -> str:
    """The run's document as text: exactly what `edgebench.results.store.save_run` writes to a run file."""
    return json.dumps(run.to_json(), indent=1) + "\n"


def _row(run_id: str, pos: int, m: Any) -> tuple[Any, ...]:
    row = row_of(run_id, m)
    # SQLite stores a NaN as NULL; so does this store, so both give the same figures
    return (row[0], pos, *(None if isinstance(v, float) and math.isnan(v) else v for v in row[1:]))


def save_run(store: PgStore, run: Run, *, text: str | None = None) -> str:
    """Store a run (insert or replace, by run id) with its measurement rows, in one transaction.

    Call it as a run goes (``complete: false`` until the end), as `edgebench.results.store.save_run`
    is called for a folder. Returns the run id.

    Args:
        text: `run_text` of ``run`` when the caller has it already (it is the costly part).

    Raises:
        ServerUnreachable: the server was lost (the run is as it was before the call; spool it).
        NoWriteRights: the user may not write.
    """
    text = run_text(run) if text is None else text
    ms = run.measurements
    rows = [_row(run.run_id, i, m) for i, m in enumerate(ms)]

    def write(conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            f"INSERT INTO {NS}.runs AS u (run_id, doc, started, command, complete, measurements, info, commit_id, "
            "commit_time, branch, dirty) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET doc=EXCLUDED.doc, started=EXCLUDED.started, "
            "command=EXCLUDED.command, complete=EXCLUDED.complete, measurements=EXCLUDED.measurements, "
            "info=EXCLUDED.info, commit_id=EXCLUDED.commit_id, commit_time=EXCLUDED.commit_time, "
            "branch=EXCLUDED.branch, dirty=EXCLUDED.dirty, updated=clock_timestamp()",
            (run.run_id, text, run.started or run.datetime, run.command, int(run.complete), len(ms),
             *commit_columns(run)),
        )  # fmt: skip
        conn.execute(f"DELETE FROM {NS}.rows WHERE run_id=%s", (run.run_id,))
        if rows:
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {NS}.rows VALUES ({', '.join(['%s'] * 19)})", rows)

    if store.read_only:
        raise NoWriteRights(f"{store}: this store was opened read-only: open it for writing to store run {run.run_id}")
    transact(store, write)
    return run.run_id


def where(store: PgStore, run_id: str) -> str:
    """How messages name a stored run: the redacted URL and the run id."""
    return f"{store} run {run_id}"


def parse_run(text: str, name: str) -> Run:
    """A run from its stored text, upgraded (as `edgebench.results.store.read_run` reads a file).

    Raises:
        SchemaError: naming ``name`` and what is wrong.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{name}: not valid JSON ({exc})") from None
    try:
        run = Run.from_json(upgrade_run(doc))
    except SchemaError as exc:
        raise SchemaError(f"{name}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SchemaError(f"{name}: malformed run ({type(exc).__name__}: {exc})") from None
    for what in run.dropped or ():
        warnings.warn(f"{name}: skipped {what}", stacklevel=3)
    return run


def read_text(store: PgStore, run_id: str) -> str | None:
    """The stored document of a run, as text (None when there is no such run)."""
    if store.version == 0:
        return None
    got = transact(store, lambda c: c.execute(f"SELECT doc FROM {NS}.runs WHERE run_id=%s", (run_id,)).fetchone())
    return None if got is None else str(got[0])


def read_run(store: PgStore, run_id: str) -> Run:
    """Read and upgrade one stored run.

    Raises:
        RunNotFound: no run has that id.
        SchemaError: its document cannot be read (naming the URL, the run and why).
    """
    text = read_text(store, run_id)
    if text is None:
        raise RunNotFound(f"run {run_id!r} is not in {store}: give a run id or 'latest'")
    return parse_run(text, where(store, run_id))


def load_run(store: PgStore, run_id: str) -> Run | None:
    """A stored run, or None with a warning when it is missing or cannot be read."""
    try:
        return read_run(store, run_id)
    except (SchemaError, RunNotFound) as exc:
        warnings.warn(f"skipping {exc}", stacklevel=2)
        return None


def list_runs(store: PgStore) -> list[str]:
    """The stored run ids, oldest first (see the module docstring for the order)."""
    if store.version == 0:
        return []
    rows = transact(store, lambda c: c.execute(f"SELECT u.run_id FROM {NS}.runs u ORDER BY {ORDER}").fetchall())
    return [r[0] for r in rows]


def find_run(store: PgStore, ref: str) -> str:
    """The id of the run given as a run id, a unique id prefix, ``latest`` or ``latest~N``.

    ``latest`` is the newest run by start time, then by the time it was first stored, then by
    id (the module docstring); ``latest~N`` is the N-th run before it.

    Raises:
        RunNotFound: naming the reference and what to give instead.
    """
    if ref.startswith("latest"):
        back = ref[len("latest") :]
        n = int(back[1:]) if back.startswith("~") and back[1:].isdigit() else 0 if back == "" else -1
        got = None
        if n >= 0 and store.version:
            got = transact(
                store,
                lambda c: c.execute(
                    f"SELECT u.run_id FROM {NS}.runs u ORDER BY {ORDER_DESC} OFFSET %s LIMIT 1", (n,)
                ).fetchone(),
            )
        if got is not None:
            return str(got[0])
        count = len(list_runs(store))
        raise RunNotFound(f"run {ref!r}: {store} holds {count} run(s); run `edgebench demo` or `edgebench run` first")
    hits: list[str] = []
    if store.version:
        like = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def find(c: psycopg.Connection[Any]) -> list[str]:
            exact = c.execute(f"SELECT run_id FROM {NS}.runs WHERE run_id=%s", (ref,)).fetchall()
            got = exact or c.execute(f"SELECT run_id FROM {NS}.runs WHERE run_id LIKE %s", (like,)).fetchall()
            return [r[0] for r in got]

        hits = transact(store, find)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise RunNotFound(f"run {ref!r} is not in {store}: give a run id, a unique prefix of one or 'latest'")
    raise RunNotFound(f"run {ref!r} is ambiguous ({len(hits)} runs start with it): give more of the run id")


def open_run(store: PgStore, ref: str, fix: str = "pick another run") -> Run:
    """The run named by ``ref`` (id, prefix, ``latest~N``), upgraded (`edgebench.results.store.open_run`).

    Raises:
        RunNotFound: there is no such run.
        UserError: its document cannot be read (naming the run, the problem and ``fix``).
    """
    run_id = find_run(store, ref)
    try:
        return read_run(store, run_id)
    except SchemaError as exc:
        raise UserError(f"{exc}: {fix}") from None


def history(
    store: PgStore,
    keys: Iterable[tuple[str, str, str]],
    *,
    metrics: Sequence[str] = ("p50", "p90", "top1", "peak_rss"),
    last: int = 30,
    command: str | None = None,
    before: str | None = None,
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """`edgebench.results.index.history` on the server: the same rows for the same runs, in one query.

    The last ``last`` successful measurements of each (board, model, variant), oldest first,
    each with ``run_id``, ``started``, the ``metrics``, ``commit``, ``branch``, ``dirty`` and
    ``config`` (a `ConfigKey`).

    Args:
        command: only runs made by this command.
        before: only runs that started at or before this ISO time.
    """
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; known: {', '.join(METRICS)}")
    keys = list(keys)
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {k: [] for k in keys}
    if not keys or store.version == 0:
        return out
    cols = "".join(f", r.{m}" for m in metrics)
    cond, extra = "", []
    if command:
        cond += " AND u.command = %s"
        extra.append(command)
    if before:
        cond += " AND u.started <= %s"
        extra.append(before)
    sql = (
        "SELECT k.i, x.* FROM unnest(%s::text[], %s::text[], %s::text[]) "
        "WITH ORDINALITY AS k(board, model, variant, i) "
        f"CROSS JOIN LATERAL (SELECT u.run_id, u.started, u.commit_id, u.branch, u.dirty, r.config{cols} "
        f"FROM {NS}.rows r JOIN {NS}.runs u ON u.run_id = r.run_id WHERE r.board = k.board AND r.model = k.model "
        f"AND r.variant = k.variant AND r.ok = 1{cond} ORDER BY {ORDER_DESC}, r.pos DESC LIMIT %s) x "
        "ORDER BY k.i"
    )
    params = ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], *extra, last)
    got = transact(store, lambda c: c.execute(sql.encode(), params).fetchall())
    per: dict[int, list[dict[str, Any]]] = {}
    for g in got:
        per.setdefault(int(g[0]), []).append(
            {
                "run_id": g[1],
                "started": g[2],
                "commit": g[3],
                "branch": g[4],
                "dirty": None if g[5] is None else bool(g[5]),
                "config": ConfigKey.from_json(json.loads(g[6])) if g[6] else ConfigKey(),
                **dict(zip(metrics, g[7:], strict=True)),
            }
        )
    for i, key in enumerate(keys, start=1):
        out[key] = list(reversed(per.get(i, [])))
    return out


def runs_by(store: PgStore, command: str | None = None) -> list[tuple[str, str, str]]:
    """``(run_id, started, run_id)`` of the stored runs, oldest first, optionally of one command.

    The folder's `edgebench.results.index.runs_by` gives the run's file as the third item;
    here it is the run's address in the store, its id (read it with `read_run`).
    """
    if store.version == 0:
        return []
    sql = f"SELECT u.run_id, u.started FROM {NS}.runs u"
    params: tuple[Any, ...] = ()
    if command:
        sql += " WHERE u.command = %s"
        params = (command,)
    rows = transact(store, lambda c: c.execute(f"{sql} ORDER BY {ORDER}".encode(), params).fetchall())
    return [(r[0], r[1], r[0]) for r in rows]


def query(store: PgStore, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A read query written for the folder's index (`edgebench.results.index.query`), run on the server.

    The tables ``runs`` and ``rows`` have the index's columns (``runs`` without ``path``); the
    query's ``?`` placeholders become psycopg's (a query must not hold a literal ``?`` or ``%``).
    """
    if store.version == 0:
        return []
    text = sql.replace("%", "%%").replace("?", "%s")

    def run(c: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        c.execute(f"SET LOCAL search_path = {NS}")
        return [tuple(r) for r in c.execute(text.encode(), tuple(params)).fetchall()]

    return transact(store, run)


def digests(store: PgStore) -> dict[str, tuple[str, bool, int]]:
    """``{run_id: (sha256 of the document, complete, measurements)}`` of every stored run."""
    if store.version == 0:
        return {}
    rows = transact(
        store,
        lambda c: c.execute(
            f"SELECT run_id, encode(sha256(convert_to(doc, 'UTF8')), 'hex'), complete, measurements FROM {NS}.runs"
        ).fetchall(),
    )
    return {r[0]: (r[1], bool(r[2]), int(r[3])) for r in rows}


def acceptances(store: PgStore) -> list[tuple[str, str, str, str]]:
    """``edgebench accept`` records on the server, oldest first: ``(run_id, by, why, at)``."""
    if store.version < 3:  # an older database read by a read-only user: it has none yet
        return []
    sql = f"SELECT run_id, by_whom, why, at FROM {NS}.accepted ORDER BY seq"
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in transact(store, lambda c: c.execute(sql).fetchall())]


def add_acceptance(store: PgStore, run_id: str, by: str, why: str, at: str) -> None:
    """Record one ``edgebench accept`` on the server (one transaction)."""
    sql = f"INSERT INTO {NS}.accepted (run_id, by_whom, why, at) VALUES (%s, %s, %s, %s)"
    transact(store, lambda c: c.execute(sql, (run_id, by, why, at)))
