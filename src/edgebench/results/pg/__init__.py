"""The results store on a PostgreSQL server: what a results folder does, for many writers at once.

A ``--results`` value that `is_url` (``postgresql://...``) names a server instead of a
folder. `open_store` connects (the URL goes to libpq as it is: ``PGPASSWORD``, ``~/.pgpass``,
``PGSERVICE``, ``sslmode`` all work; every message shows `redact`'s URL, never a password),
checks the server (PostgreSQL 12 or newer) and the schema (`migrations`: upgraded in place
by a writer, a newer one refused) and returns a `PgStore` that the functions below take
where the folder's take a path:

======================  ===========================================  ==================================
folder                  server                                       note
======================  ===========================================  ==================================
store.save_run          `save_run` (store, run) -> run id            one transaction per call
store.read_run          `read_run` (store, run_id)                   RunNotFound / SchemaError
store.load_run          `load_run` (store, run_id)                   None + warning
store.list_runs         `list_runs` (store) -> run ids               oldest first
store.find_run          `find_run` (store, ref) -> run id            id, prefix, latest, latest~N
store.open_run          `open_run` (store, ref, fix)
index.history           `history` (store, keys, ...)                 the same rows
index.runs_by           `runs_by` (store, command)                   third item: the run id
index.query             `query` (store, sql, params)                 the index's tables and SQL
nightly.nightly_lock    `nightly_lock` (store, name, timeout=)       an advisory lock per name
======================  ===========================================  ==================================

`push` / `pull` move history between a folder and a server; `spool_run` keeps a run that
lost its server in a local folder and says the `push` command that uploads it. The order of
runs (``latest``) is in `edgebench.results.pg.runs`. psycopg is imported only when a server
is used, so that without the ``postgres`` extra a URL is one `MissingDependency` line.
"""

from __future__ import annotations

from edgebench.results.pg.conn import (
    MIN_SERVER_VERSION,
    NoWriteRights,
    PgStore,
    ResultsServerError,
    SchemaTooNew,
    ServerUnreachable,
    is_url,
    redact,
)
from edgebench.results.pg.migrations import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from edgebench.results.pg.move import (
    CopyReport,
    default_spool,
    nightly_lock,
    pull,
    push,
    push_command,
    spool_run,
)
from edgebench.results.pg.runs import (
    acceptances,
    add_acceptance,
    find_run,
    history,
    list_runs,
    load_run,
    open_run,
    open_store,
    query,
    read_run,
    run_text,
    runs_by,
    save_run,
)

__all__ = [
    "MIGRATIONS",
    "MIN_SERVER_VERSION",
    "SCHEMA_VERSION",
    "CopyReport",
    "NoWriteRights",
    "PgStore",
    "ResultsServerError",
    "SchemaTooNew",
    "ServerUnreachable",
    "acceptances",
    "add_acceptance",
    "default_spool",
    "find_run",
    "history",
    "is_url",
    "list_runs",
    "load_run",
    "migrate",
    "nightly_lock",
    "open_run",
    "open_store",
    "pull",
    "push",
    "push_command",
    "query",
    "read_run",
    "redact",
    "run_text",
    "runs_by",
    "save_run",
    "schema_version",
    "spool_run",
]
