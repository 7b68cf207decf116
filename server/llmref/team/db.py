"""Connecting to the team database: URLs (masked wherever they are shown), roles, the schema
and its version check.

Everything here speaks to PostgreSQL through psycopg 3 with bound parameters; the only SQL
composed in Python is DDL (role names are fixed identifiers, passwords are sent as SCRAM
verifiers computed by libpq, so the plain password never reaches the server's logs).
Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("llmref.team")

SCHEMA_VERSION = 2  # what this llmref reads and writes
READER = "llmref_reader"
WRITER = "llmref_writer"
ENV_DATABASE = "LLMREF_DATABASE"
DEFAULT_TIMEOUT_MS = 300
CONNECT_TIMEOUT_S = 3  # libpq's minimum is 2 s (per host)
LOCK_KEY = 0x6C6C6D726566  # pg_advisory_lock key of publish and init ("llmref")

# migrations[n] takes a schema at version n-1 to n (version 1 is schema.sql itself)
MIGRATIONS: dict[int, list[str]] = {
    # 2: every entry's terms and frequencies in one row (exact scores of search candidates)
    2: [
        "CREATE TABLE llmref.entry_terms (entry integer PRIMARY KEY, terms integer[] NOT NULL,"
        " tfs smallint[] NOT NULL)",
        "INSERT INTO llmref.entry_terms (entry, terms, tfs) SELECT entry, array_agg(term ORDER BY"
        " term), array_agg(tf ORDER BY term) FROM llmref.postings GROUP BY entry",
    ],
}


class TeamError(Exception):
    """A team-database problem, with a message fit to show (no password in it)."""


class MissingDriver(TeamError):
    pass


def driver():
    """The psycopg module, or a clear error when the optional dependency is missing."""
    try:
        import psycopg
    except ImportError as exc:
        raise MissingDriver(
            "the team corpus needs psycopg 3: pip install 'llmref[team]' "
            f"(or psycopg[binary]) ({exc})"
        ) from None
    return psycopg


# --- URLs --------------------------------------------------------------------------------------

_URI_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:/@?#]*:)([^@/?#]*)(@)", re.I)
_KEY_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", re.I)


def mask(url: str) -> str:
    """The URL with its password (URI userinfo, ``password=`` keyword or query) as ``***``."""
    out = _URI_PASSWORD.sub(r"\1***\3", url)
    return _KEY_PASSWORD.sub(r"\1***", out)


def secrets_of(url: str) -> list[str]:
    """The password written in a URL, as written and as decoded (to scrub messages)."""
    from urllib.parse import quote, unquote

    found: list[str] = []
    m = _URI_PASSWORD.match(url)
    if m and m.group(2):
        found += [m.group(2), unquote(m.group(2))]
    for m in _KEY_PASSWORD.finditer(url):
        value = m.group(2)
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        if value:
            found += [value, unquote(value), quote(value, safe="")]
    try:
        password = driver().conninfo.conninfo_to_dict(url).get("password")
        if password:
            found.append(str(password))
    except Exception:
        pass
    return sorted({s for s in found if s and s != "***"}, key=len, reverse=True)


def scrub(text: str, url: str | None = None) -> str:
    """``text`` with every password of ``url`` (and any URL's password) masked."""
    out = text
    if url:
        for secret in secrets_of(url):
            out = out.replace(secret, "***")
    out = re.sub(r"postgres(?:ql)?://[^\s'\"]+", lambda m: mask(m.group(0)), out, flags=re.I)
    return _KEY_PASSWORD.sub(r"\1***", out)


def describe(exc: BaseException, url: str | None = None) -> str:
    """A one-line, password-free description of a driver error."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return scrub(text, url)


# --- connecting ----------------------------------------------------------------------------------


def connect(
    url: str,
    *,
    writer: bool = False,
    timeout_ms: int | None = DEFAULT_TIMEOUT_MS,
    connect_timeout: int = CONNECT_TIMEOUT_S,
    check: bool = True,
) -> psycopg.Connection:
    """A connection (autocommit) with our statement timeout; readers' sessions are read-only.
    ``check``: verify the schema version (TeamError when missing or too new)."""
    psycopg = driver()
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "llmref"}
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise TeamError(f"invalid database URL {mask(url)}: {describe(exc, url)}") from None
    if "connect_timeout" not in info:
        kwargs["connect_timeout"] = max(2, int(connect_timeout))
    try:
        conn = psycopg.connect(url, **kwargs)
    except psycopg.Error as exc:
        raise TeamError(
            f"cannot connect to the team database {mask(url)}: {describe(exc, url)}"
        ) from None
    try:
        # every name we use is qualified: nothing in another schema can stand in for a
        # function or operator of ours
        conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
        # our statements are small but their estimates are not (arrays): JIT would compile
        # for seconds what runs in milliseconds
        conn.execute("SELECT set_config('jit', 'off', false)")
        if timeout_ms:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(timeout_ms),))
        if not writer:
            conn.execute("SELECT set_config('default_transaction_read_only', 'on', false)")
            # never prepared server-side: after five runs PostgreSQL may keep a generic plan,
            # blind to the arrays a search passes (measured: 9 ms custom, 37 ms generic)
            conn.prepare_threshold = None
        if check:
            check_schema(conn, url)
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: psycopg.Connection) -> int | None:
    """The version of the llmref schema in this database (None: there is none)."""
    row = conn.execute("SELECT to_regclass('llmref.meta') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute("SELECT value FROM llmref.meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError:
        return -1


def check_schema(conn: psycopg.Connection, url: str) -> int:
    """The schema version, or TeamError: missing, older (run db init) or newer than ours."""
    psycopg = driver()
    try:
        version = schema_version(conn)
    except psycopg.Error as exc:
        raise TeamError(
            f"cannot read the llmref schema of {mask(url)}: {describe(exc, url)}"
        ) from None
    if version is None:
        raise TeamError(
            f"{mask(url)} has no llmref schema: run `llmref db init --database URL` "
            "(as the database owner) first"
        )
    if version < 0 or version > SCHEMA_VERSION:
        raise TeamError(
            f"the team database {mask(url)} has llmref schema version {version}, newer than "
            f"this llmref understands ({SCHEMA_VERSION}): upgrade llmref"
        )
    if version < SCHEMA_VERSION:
        raise TeamError(
            f"the team database {mask(url)} has llmref schema version {version}, older than "
            f"this llmref's ({SCHEMA_VERSION}): run `llmref db init --database URL` to upgrade it"
        )
    return version


# --- db init -------------------------------------------------------------------------------------


def _statements(script: str) -> list[str]:
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def init_db(
    url: str,
    *,
    reader_password: str | None = None,
    writer_password: str | None = None,
) -> list[str]:
    """Create (or upgrade) the schema and the two roles; returns what was done, one line each.
    Idempotent: a current schema is left as it is (the grants are applied again)."""
    psycopg = driver()
    from psycopg import sql

    done: list[str] = []
    conn = connect(url, writer=True, timeout_ms=None, check=False)
    try:
        conn.autocommit = False
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            version = schema_version(conn)
            if version is not None and (version < 0 or version > SCHEMA_VERSION):
                raise TeamError(
                    f"the database has llmref schema version {version}, newer than this llmref "
                    f"understands ({SCHEMA_VERSION}): upgrade llmref"
                )
            if version is None:
                script = resources.files("llmref.team").joinpath("schema.sql").read_text("utf-8")
                for statement in _statements(script):
                    conn.execute(statement.encode())  # our own DDL (no parameters)
                conn.execute(
                    "INSERT INTO llmref.meta VALUES ('schema_version', %s), ('created', now()::text)",
                    (str(SCHEMA_VERSION),),
                )
                done.append(f"created the llmref schema (version {SCHEMA_VERSION})")
            elif version < SCHEMA_VERSION:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS.get(step, []):
                        conn.execute(statement.encode())
                conn.execute(
                    "UPDATE llmref.meta SET value = %s WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )
                done.append(
                    f"upgraded the llmref schema from version {version} to {SCHEMA_VERSION}"
                )
            else:
                done.append(f"the llmref schema is current (version {SCHEMA_VERSION})")
            for role, password, what in (
                (READER, reader_password, "read-only"),
                (WRITER, writer_password, "publishes"),
            ):
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                    done.append(f"created role {role} ({what})")
                if password:
                    verifier = conn.pgconn.encrypt_password(
                        password.encode(), role.encode(), b"scram-sha-256"
                    )
                    conn.execute(
                        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                            sql.Identifier(role), sql.Literal(verifier.decode())
                        )
                    )
                    done.append(f"set the password of {role}")
            _grant(conn)
        done.append(f"granted {READER} SELECT and {WRITER} SELECT/INSERT/UPDATE/DELETE on llmref")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise TeamError(
            f"db init needs a role that may create schemas and roles (the database owner with "
            f"CREATEROLE, or an admin): {describe(exc, url)}"
        ) from None
    except psycopg.Error as exc:
        raise TeamError(f"db init failed on {mask(url)}: {describe(exc, url)}") from None
    finally:
        conn.close()
    return done


def _grant(conn: psycopg.Connection) -> None:
    """Readers: SELECT. The writer: owns the corpus tables (it publishes and maintains them:
    bulk index builds, VACUUM, ANALYZE); the schema stays the admin's (no new objects)."""
    psycopg = driver()
    from psycopg import sql

    reader, writer = sql.Identifier(READER), sql.Identifier(WRITER)
    owned = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'llmref' AND (c.relkind = 'r' OR (c.relkind = 'S' AND NOT EXISTS ("
        "  SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))) "
        "ORDER BY c.relname"
    ).fetchall()
    for name, kind in owned:
        what = "TABLE" if kind == "r" else "SEQUENCE"
        statement = sql.SQL("ALTER " + what + " {} OWNER TO {}").format(
            sql.Identifier("llmref", name), writer
        )
        try:
            with conn.transaction():
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:  # not a superuser: act as the writer
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(writer))
            conn.execute(statement)
    row = conn.execute("SELECT current_database()").fetchone()
    database = sql.Identifier(row[0] if row else "postgres")
    for grant in (
        "REVOKE ALL ON SCHEMA llmref FROM PUBLIC",
        "REVOKE ALL ON ALL TABLES IN SCHEMA llmref FROM PUBLIC",
        "GRANT USAGE ON SCHEMA llmref TO {r}, {w}",
        "GRANT CREATE ON SCHEMA llmref TO {w}",  # index builds of bulk loads
        "GRANT SELECT ON ALL TABLES IN SCHEMA llmref TO {r}",
        "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA llmref FROM {r}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA llmref TO {w}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA llmref TO {w}",
        "GRANT TEMPORARY ON DATABASE {d} TO {w}",  # publish stages its rows in temp tables
    ):
        conn.execute(sql.SQL(grant).format(r=reader, w=writer, d=database))


__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "ENV_DATABASE",
    "MissingDriver",
    "READER",
    "SCHEMA_VERSION",
    "TeamError",
    "WRITER",
    "check_schema",
    "connect",
    "describe",
    "driver",
    "init_db",
    "mask",
    "scrub",
]
