"""Every bad input of issue 21 against the real server: one line naming the URL without its password, and the fix."""

from __future__ import annotations

import sys

import pytest
from pg_server import READER, PgServer, free_port

from edgebench.errors import MissingDependency
from edgebench.results.pg import (
    SCHEMA_VERSION,
    NoWriteRights,
    ResultsServerError,
    SchemaTooNew,
    ServerUnreachable,
    history,
    list_runs,
    open_store,
    read_run,
    redact,
    save_run,
)
from edgebench.results.pg import conn as pg_conn

from ._runs import make_run


def one_line(exc: pytest.ExceptionInfo[BaseException], *secrets: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for s in secrets:
        assert s not in msg, f"a password leaked into: {msg}"
    return msg


def db_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_redact_drops_every_password() -> None:
    assert redact("postgresql://u:s3cr%40t@h:5432/db?sslmode=require&password=x") == (
        "postgresql://u@h:5432/db?sslmode=require"
    )
    assert redact("postgresql://u:p@ss@h/db") == "postgresql://u@h/db"  # an unencoded '@' in the password
    assert redact("postgres://h/db?password=zz") == "postgres://h/db"
    assert redact("postgresql:///db?service=ci") == "postgresql:///db?service=ci"
    assert "abc" not in redact("host=h password=abc dbname=d")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://eb_writer@127.0.0.1:notaport/db", "port 'notaport' is not a number"),
        ("postgresql://eb_writer:pw@127.0.0.1/db?colour=blue", 'invalid URI query parameter: "colour"'),
        ("mysql://eb_writer:pw@127.0.0.1/db", "not a PostgreSQL URL"),
    ],
)
def test_a_malformed_url(url: str, why: str) -> None:
    with pytest.raises(ResultsServerError) as exc:
        open_store(url)
    msg = one_line(exc, ":pw@")
    assert msg.startswith(redact(url) + ": ") and why in msg and "postgresql://[user@]host" in msg


def test_a_wrong_password_names_the_url_without_it(
    pg_server: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD")
    url = pg_server.url(db_of(pg_db)).replace("eb_writer@", "eb_writer:Wr0ng-Pa55@")
    with pytest.raises(ResultsServerError) as exc:
        open_store(url)
    msg = one_line(exc, "Wr0ng-Pa55")
    assert msg.startswith(f"{pg_db}: the server refused the password of user 'eb_writer'")
    assert "PGPASSWORD" in msg and "~/.pgpass" in msg
    monkeypatch.setenv("PGPASSWORD", "Wr0ng-Pa55")  # the same through the environment
    with pytest.raises(ResultsServerError) as exc:
        open_store(pg_db)
    assert one_line(exc, "Wr0ng-Pa55").startswith(f"{pg_db}: the server refused the password")
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(ResultsServerError, match="asks for a password and none was given: set PGPASSWORD"):
        open_store(pg_db)


def test_a_password_from_pgpass_and_a_service_file(
    pg_server: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    """libpq's own ways to give credentials work: nothing in the URL."""
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"  # type: ignore[operator]
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:eb_writer:{pg_server.password('eb_writer')}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with open_store(pg_db) as s:
        save_run(s, make_run(1, n=1))
    service = tmp_path / "pg_service.conf"  # type: ignore[operator]
    service.write_text(f"[ci]\nhost=127.0.0.1\nport={pg_server.port}\nuser=eb_writer\ndbname={db_of(pg_db)}\n")
    monkeypatch.setenv("PGSERVICEFILE", str(service))
    with open_store("postgresql:///?service=ci", read_only=True) as s:
        assert len(list_runs(s)) == 1


def test_a_database_that_does_not_exist(pg_server: PgServer, pg_db: str) -> None:
    url = pg_server.url("no_such_db", password=True)
    with pytest.raises(ResultsServerError) as exc:
        open_store(url)
    msg = one_line(exc, pg_server.password("eb_writer"))
    assert msg == (
        f"{redact(url)}: database 'no_such_db' does not exist: create it (createdb no_such_db, as a user who may) "
        "or name an existing database in the URL"
    )


def test_an_unreachable_server() -> None:
    url = f"postgresql://eb_writer:hunter2@127.0.0.1:{free_port()}/db"
    with pytest.raises(ServerUnreachable) as exc:
        open_store(url)
    msg = one_line(exc, "hunter2")
    assert msg.startswith(f"postgresql://eb_writer@127.0.0.1:{url.split(':')[3]}: cannot reach the results server (")
    assert "Connection refused" in msg and "check that PostgreSQL runs there" in msg


def test_an_unsupported_server_version(pg_server: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real server (15) refused as if edgebench needed 16: the check is the one a 9.6 or 11 server meets."""
    monkeypatch.setattr(pg_conn, "MIN_SERVER_VERSION", 160000)
    with pytest.raises(ResultsServerError) as exc:
        open_store(pg_db)
    assert one_line(exc) == (
        f"{pg_db}: the server runs PostgreSQL {pg_server.version} and edgebench needs 16 or newer: upgrade the "
        "server, or use a results folder"
    )
    assert pg_conn.server_major(90624) == "9.6" and pg_conn.server_major(110022) == "11"


def test_a_url_without_the_extra_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails as where it is not installed
    with pytest.raises(MissingDependency) as exc:
        open_store("postgresql://ci:topsecret@db.example/results")
    assert one_line(exc, "topsecret") == (
        "postgresql://ci@db.example/results: a results store on PostgreSQL needs psycopg 3: "
        "pip install 'edgebench[postgres]'"
    )


def test_a_newer_schema_is_refused_and_left_alone(pg_db: str) -> None:
    with open_store(pg_db) as s:
        save_run(s, make_run(1, n=2))
        s.connection().execute("INSERT INTO edgebench.edgebench_schema (version, edgebench) VALUES (7, '9.0')")
    for read_only in (False, True):
        with pytest.raises(SchemaTooNew) as exc:
            open_store(pg_db, read_only=read_only)
        assert one_line(exc) == (
            f"{pg_db}: the results database has schema version 7, written by a newer edgebench (this one knows up "
            f"to {SCHEMA_VERSION}): upgrade edgebench (pip install -U edgebench) to use it"
        )
    import psycopg

    with psycopg.connect(pg_db) as c:
        assert c.execute("SELECT count(*) FROM edgebench.runs").fetchone() == (1,)
        assert [r[0] for r in c.execute("SELECT version FROM edgebench.edgebench_schema ORDER BY 1")] == [
            *range(1, SCHEMA_VERSION + 1),
            7,
        ]


def test_a_user_without_write_rights_reads_but_cannot_write(pg_server: PgServer, pg_db: str) -> None:
    db = db_of(pg_db)
    reader_url = pg_server.url(db, READER, password=True)
    # on an empty database it cannot even create the tables: one line, nothing created
    with pytest.raises(NoWriteRights) as exc:
        open_store(reader_url)
    msg = one_line(exc, pg_server.password(READER))
    assert msg.startswith(f"{redact(reader_url)}: user 'eb_reader' may not create edgebench's tables (permission")
    import psycopg

    with psycopg.connect(pg_db) as c:
        assert c.execute("SELECT to_regnamespace('edgebench')").fetchone() == (None,)
    with open_store(pg_db) as s:
        run = make_run(1, n=3)
        save_run(s, run)
    pg_server.sql(f"GRANT USAGE ON SCHEMA edgebench TO {READER}; GRANT SELECT ON ALL TABLES IN SCHEMA edgebench TO "
                  f"{READER}", db=db, user="eb_writer")  # fmt: skip
    with pytest.raises(NoWriteRights) as exc:
        open_store(reader_url)
    msg = one_line(exc, pg_server.password(READER))
    assert msg.startswith(f"{redact(reader_url)}: user 'eb_reader' may not write results here (no runs INSERT")
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA edgebench TO eb_reader" in msg
    assert "read-only commands work as they are" in msg
    with open_store(reader_url, read_only=True) as r:  # ... and reading works
        assert read_run(r, run.run_id) == run
        assert history(r, [run.measurements[0].key])[run.measurements[0].key]
