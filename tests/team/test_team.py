"""The team corpus on a real PostgreSQL (see conftest.py): publish, search, cards, roles,
hostile notes, a database that is down or slow, schema versions, and one query plan giving
the same answers on both engines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import CORPUS, DATA

from .conftest import READER_PASSWORD, WRITER_PASSWORD, TeamDB, make_db

ROOT = Path(__file__).resolve().parents[2]

SERVING = """# Serving runbook

## 如何为 Zephyrine 路由器配置 KV cache 预算？

Zephyrine 路由器把 KV cache 的显存预算按租户切分，每个租户的上限写在 quota.yaml 里。

## Why does the Zephyrine router shed load?

When the queue depth passes the budget, Zephyrine sheds load by rejecting new prefill
requests first; decode requests keep their KV cache (the brindlewort rule).
"""

TRAINING = """# Training notes

## Quokkaflow 调度器如何做梯度累积？

Quokkaflow 在每个微批次之后累积梯度，到 accumulation_steps 再更新参数。
"""


def write_notes(folder: Path) -> Path:
    wiki = folder / "wiki"
    wiki.mkdir(parents=True, exist_ok=True)
    (wiki / "serving.md").write_text(SERVING, encoding="utf-8")
    (wiki / "training.md").write_text(TRAINING, encoding="utf-8")
    return wiki


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full["PYTHONPATH"] = str(ROOT / "server")
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "llmref", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
    )


def settings(db: TeamDB | str, *, bundled: bool = True, timeout_ms: int = 2000, **kw):
    from llmref.config import Settings

    url = db if isinstance(db, str) else db.reader
    return Settings(bundled=bundled, database=url, database_timeout_ms=timeout_ms, **kw)


def open_ref(*args, **kw):
    from llmref.lookup import Reference

    return Reference.open(settings(*args, **kw))


def wait_until(check, timeout: float = 20.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)


def team_ids(result) -> list[str]:
    return [r.entry.id for r in result.results if r.entry.id.startswith("team:")]


# --- db init and roles -------------------------------------------------------------------------


def test_db_init_is_idempotent_and_readers_cannot_write(team_db: TeamDB):
    import psycopg

    from llmref.team.db import SCHEMA_VERSION, init_db

    again = init_db(team_db.admin)
    assert f"the llmref schema is current (version {SCHEMA_VERSION})" in again
    with psycopg.connect(team_db.reader, autocommit=True) as conn:
        assert conn.execute("SELECT docs FROM llmref.stats").fetchone() == (0,)
        for statement in (
            "INSERT INTO llmref.meta VALUES ('x', 'y')",
            "DELETE FROM llmref.entries",
            "UPDATE llmref.stats SET docs = 1",
            "CREATE TABLE llmref.evil (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_publishing_with_the_reader_role_is_refused_clearly(team_db: TeamDB, tmp_path: Path):
    wiki = write_notes(tmp_path)
    done = run_cli("publish", str(wiki), "--database", team_db.reader)
    assert done.returncode == 2
    assert "may not publish" in done.stderr and "llmref_writer" in done.stderr
    assert READER_PASSWORD not in done.stderr + done.stdout


# --- publish and search --------------------------------------------------------------------------


def test_publish_then_search_show_list_through_the_cli(team_db: TeamDB, tmp_path: Path):
    wiki = write_notes(tmp_path)
    dry = run_cli("publish", str(wiki), "--database", team_db.writer, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "add     wiki/serving.md" in dry.stdout and "Nothing was written" in dry.stdout

    done = run_cli("publish", str(wiki), "--database", team_db.writer)
    assert done.returncode == 0, done.stderr
    assert "Published 3 entries from 2 files (2 new" in done.stdout
    assert WRITER_PASSWORD not in done.stdout + done.stderr

    env = {"LLMREF_DATABASE": team_db.reader}
    found = run_cli("search", "Zephyrine", "--json", env=env)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)
    assert results and results[0]["id"].startswith("team:wiki-serving:")
    assert results[0]["source"] == "team:wiki/serving.md"
    assert "Zephyrine" in results[0]["question"]
    copy = Path(results[0]["path"])  # a local copy to open, not the publisher's checkout
    assert copy.is_file() and not copy.is_relative_to(wiki), copy
    assert "Zephyrine" in copy.read_text(encoding="utf-8").splitlines()[results[0]["line"] - 1]
    # the bundled corpus is searched too, and the results merge
    mixed = json.loads(run_cli("search", "KV cache", "--json", "-n", "10", env=env).stdout)
    sources = {r["source"].startswith("team:") for r in mixed}
    assert sources == {True, False}

    shown = run_cli("show", results[0]["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    answer = results[0]["answer"].split()[0]
    assert answer in shown.stdout and "team:wiki/serving.md" in shown.stdout
    hashed = run_cli("show", results[0]["id"].rsplit(":", 1)[1], env=env)
    assert hashed.returncode == 0 and answer in hashed.stdout

    listed = run_cli("list", env=env).stdout.splitlines()
    assert sum(line.startswith("team:") for line in listed) == 3
    as_json = json.loads(run_cli("list", "--json", env=env).stdout)
    assert [e["path"] for e in as_json if e["id"].startswith("team:")] == ["", "", ""]
    assert any(line.startswith("llm-interview-104-questions:") for line in listed)


def test_a_question_both_corpora_ask_is_listed_once(team_db: TeamDB, tmp_path: Path):
    """A team that published the same interview notes as the bundled corpus: the question
    comes up once (the better-ranked copy), as local duplicates do; the team's own
    questions still come up."""
    from llmref.team.publish import publish

    notes = tmp_path / "interview"
    notes.mkdir()
    (notes / "copied.md").write_text(
        "# 面经\n\n### 1. 涌现能力是啥原因？\n\n团队版：规模到一定程度后出现的能力。\n\n"
        "### 2. 涌现能力和模型规模有什么关系？\n\n参数量和数据量越过阈值后能力突然出现。\n",
        encoding="utf-8",
    )
    publish([notes], team_db.writer)
    ref = open_ref(team_db, cache=tmp_path / "cache")
    try:
        wait_until(lambda: ref.team.concepts.items)
        results = ref.search("涌现能力 原因", limit=10).results
        questions = [r.entry.question for r in results]
        assert questions.count("涌现能力是啥原因？") == 1, questions
        assert any(r.entry.id.startswith("team:") for r in results), questions
        assert "涌现能力和模型规模有什么关系？" in questions
    finally:
        ref.close()


def test_publish_workers_write_what_one_process_writes(pg):
    """A big publish parses in worker processes (llmref.team.worker): the database holds the
    same entries, postings and concept rows as a publish in one process."""
    import psycopg

    from llmref.team.publish import publish

    def contents(db: TeamDB) -> tuple:
        with psycopg.connect(db.admin) as conn:
            return tuple(
                conn.execute(sql).fetchall()
                for sql in (
                    "SELECT id, data FROM llmref.entries ORDER BY id",
                    "SELECT count(*), sum(tf) FROM llmref.postings",
                    "SELECT count(*) FROM llmref.about",
                )
            )

    one, two = make_db(pg.primary), make_db(pg.primary)
    assert publish([CORPUS], one.writer, workers=1).entries > 100
    report = publish([CORPUS], two.writer, workers=2)
    assert report.workers == 2
    assert contents(one) == contents(two)


def test_incremental_publish_replaces_changed_and_removes_deleted_files(
    team_db: TeamDB, tmp_path: Path
):
    from llmref.team.publish import publish

    wiki = write_notes(tmp_path)
    first = publish([wiki], team_db.writer)
    assert (first.added, first.changed, first.removed, first.entries) == (2, 0, 0, 3)
    assert publish([wiki], team_db.writer).entries == 0  # nothing changed: nothing written

    (wiki / "serving.md").write_text(SERVING.replace("brindlewort", "yarrowfill"), "utf-8")
    (wiki / "training.md").unlink()
    second = publish([wiki], team_db.writer)
    assert (second.added, second.changed, second.removed, second.unchanged) == (0, 1, 1, 0)

    ref = open_ref(team_db, bundled=False)
    try:
        assert team_ids(ref.search("yarrowfill"))
        assert not ref.search("Quokkaflow").results
        assert not team_ids(ref.search("brindlewort"))
    finally:
        ref.close()

    import psycopg

    with psycopg.connect(team_db.admin) as conn:
        docs, lengths = conn.execute("SELECT docs, lengths FROM llmref.stats").fetchone()
        assert docs == conn.execute("SELECT count(*) FROM llmref.entries").fetchone()[0] == 2
        real = conn.execute(
            "SELECT array_agg(s) FROM (SELECT sum(x) AS s FROM llmref.entries, "
            "unnest(sizes) WITH ORDINALITY AS u(x, i) GROUP BY i ORDER BY i) t"
        ).fetchone()[0]
        assert [float(x) for x in real] == [float(x) for x in lengths]
        orphans = conn.execute(
            "SELECT count(*) FROM llmref.lexicon l WHERE NOT EXISTS "
            "(SELECT 1 FROM llmref.postings p WHERE p.term = l.id)"
        ).fetchone()[0]
        assert orphans == 0


def test_an_interrupted_publish_keeps_the_corpus_searchable_and_resumes(
    team_db: TeamDB, tmp_path: Path
):
    from llmref.team.publish import publish

    notes = tmp_path / "many"
    notes.mkdir()
    for n in range(12):
        (notes / f"n{n:02d}.md").write_text(
            f"# Topic {n}\n\n## Wombatix 第{n}号问题是什么？\n\nWombatix answer number {n}.\n",
            encoding="utf-8",
        )

    class Interrupted(Exception):
        pass

    def crash(batch: int) -> None:
        if batch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        publish([notes], team_db.writer, batch_entries=4, on_batch=crash)
    ref = open_ref(team_db, bundled=False)
    try:
        partial = team_ids(ref.search("Wombatix", limit=50))
        assert 0 < len(partial) < 12  # what was committed is searchable
    finally:
        ref.close()
    resumed = publish([notes], team_db.writer, batch_entries=4)
    assert resumed.unchanged > 0 and resumed.added + resumed.unchanged == 12
    ref = open_ref(team_db, bundled=False)
    try:
        assert len(team_ids(ref.search("Wombatix", limit=50))) == 12
    finally:
        ref.close()


def test_hostile_notes_publish_safely_or_are_skipped_with_a_warning(
    team_db: TeamDB, tmp_path: Path
):
    import psycopg

    from llmref.corpus.loader import ScanRules
    from llmref.team.publish import publish

    notes = tmp_path / "hostile"
    notes.mkdir()
    injection = "'); DROP TABLE llmref.entries; --"
    (notes / "sql.md").write_text(
        f"# {injection}\n\n## Robert'); DROP TABLE llmref.files;-- 是谁？\n\n"
        f"SELECT * FROM pg_shadow; {injection} \\x00 $$ E'\\\\' %s %(x)s :name\n",
        encoding="utf-8",
    )
    # NUL bytes past the first 8 KB (earlier ones make the file "binary": skipped)
    filler = "正常的笔记内容。" * 1200
    (notes / "nul.md").write_text(
        f"# NUL\n\n{filler}\n\n## Nulleria 问题\n\nNulleria\x00 answer\x00 text\n",
        encoding="utf-8",
    )
    # one 1.2 MB section without a paragraph break, and a 300-character "word"
    (notes / "huge.md").write_text(
        "# Huge\n\n" + "Gigantia " + " ".join(f"word{n}" for n in range(130_000)) + " "
        + "x" * 300 + "\n",
        encoding="utf-8",
    )  # fmt: skip
    (notes / "toobig.md").write_text("# Too big\n\n" + "大" * 2_000_000 + "\n", encoding="utf-8")

    report = publish([notes], team_db.writer, rules=ScanRules(max_bytes=4_000_000))
    messages = [str(p) for p in report.problems]
    assert any("toobig.md" in m and "size cap" in m for m in messages)
    nul = [m for m in messages if "nul.md" in m and "NUL" in m]
    assert nul and ":" in nul[0].split("nul.md", 1)[1]  # file and line
    assert report.added == 3
    with psycopg.connect(team_db.admin) as conn:
        assert conn.execute("SELECT to_regclass('llmref.files')").fetchone()[0] is not None
        assert conn.execute("SELECT count(*) FROM llmref.files").fetchone()[0] == 3
    ref = open_ref(team_db, bundled=False)
    try:
        robert = ref.search("Robert DROP TABLE")
        assert robert.results and "DROP TABLE llmref.files" in robert.results[0].entry.question
        assert team_ids(ref.search("Nulleria"))
        assert team_ids(ref.search("Gigantia"))
        entry = ref.get(team_ids(ref.search("Nulleria"))[0])
        assert entry is not None and "\x00" not in entry.answer
    finally:
        ref.close()


# --- one plan, two engines ----------------------------------------------------------------------


def _fixed_dismax(monkeypatch):
    """Whoosh's DisjunctionMaxMatcher scores a document with sub-matchers that sit on other
    documents (max of their current scores, whatever their ids): with that fixed, Whoosh and
    PostgreSQL must give the same scores."""
    from whoosh.matching import binary

    def score(self):
        a, b = self.a, self.b
        if not a.is_active():
            return b.score()
        if not b.is_active() or a.id() < b.id():
            return a.score()
        if b.id() < a.id():
            return b.score()
        return max(a.score(), b.score())

    monkeypatch.setattr(binary.DisjunctionMaxMatcher, "score", score)


def test_the_same_plan_scores_alike_and_retrieval_quality_matches(pg, tmp_path, monkeypatch):
    from llmref.config import Settings
    from llmref.lookup import Reference
    from llmref.team.publish import publish
    from llmref.team.search import DEFAULT_K, DEFAULT_M, compile_plan

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import retrieval

    db = make_db(pg.primary, "bundled")
    publish([CORPUS], db.writer)
    local = Reference.open(Settings(cache=tmp_path / "local"))
    team = Reference.open(
        Settings(bundled=False, database=db.reader, database_timeout_ms=5000, cache=tmp_path / "t")
    )
    try:
        wait_until(lambda: team.team.concepts.items)  # the concept map (its doc counts)
        sets = {
            name: yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
            for name in ("dev-queries.yaml", "dev-nl-queries.yaml")
        }
        for name, queries in sets.items():
            whoosh = retrieval.evaluate(local, queries)
            postgres = retrieval.evaluate(team, queries)
            assert abs(whoosh["hit@1"] - postgres["hit@1"]) <= 0.02, name
            assert abs(whoosh["hit@3"] - postgres["hit@3"]) <= 0.02, name

        _fixed_dismax(monkeypatch)
        for item in [q for queries in sets.values() for q in queries]:
            plan = local._prepare(item["query"])
            expected = local.index.search(plan.clauses, limit=10, terms=True)
            got = team.team.search_plan(compile_plan(plan.clauses), 10)
            assert got is not None
            local_id = lambda ident: ident.removeprefix("team:corpus-")  # noqa: E731
            a = {h.id: round(h.score, 4) for h in expected}
            b = {local_id(h.id): round(h.score, 4) for h, _e in got.hits}
            common = set(a) & set(b)
            assert len(common) >= len(a) - 1, item["query"]  # the 10th may tie with the 11th
            assert all(a[k] == b[k] for k in common), item["query"]
            held = {local_id(h.id): h.terms for h, _e in got.hits}
            for h in expected:  # every query term Whoosh saw in a hit, the team hit holds too
                if h.id in held:
                    assert h.terms <= held[h.id], item["query"]
            # posting lists cut short (as at 100k entries, where most lists pass k): other
            # candidates, but each scored exactly, from every query term it holds
            team.team.k, team.team.m = 3, 40
            try:
                cut = team.team.search_plan(compile_plan(plan.clauses), 10)
            finally:
                team.team.k, team.team.m = DEFAULT_K, DEFAULT_M
            assert cut is not None
            wide = {h.id: round(h.score, 4) for h in local.index.search(plan.clauses, limit=400)}
            for h, _e in cut.hits:
                assert wide[local_id(h.id)] == round(h.score, 4), item["query"]
    finally:
        local.close()
        team.close()


# --- never blocking the editor --------------------------------------------------------------------


def test_a_database_that_is_down_gives_local_results_and_one_warning(tmp_path, caplog):
    from .conftest import cluster

    free_port = cluster.free_port

    url = f"postgresql://llmref_reader:{READER_PASSWORD}@127.0.0.1:{free_port()}/nothing"
    caplog.set_level(logging.WARNING, logger="llmref.team")
    ref = open_ref(url, cache=tmp_path / "c")
    try:
        for query in ("KV cache", "RoPE", "LoRA", "KV cache"):
            found = ref.search(query)
            assert found.results and not team_ids(found)
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "unavailable" in warnings[0] and "searching the local corpus only" in warnings[0]
        assert READER_PASSWORD not in warnings[0] and "***" in warnings[0]
        assert ref.team.take_warnings() == warnings
    finally:
        ref.close()


def test_a_slow_database_times_out_then_comes_back(pg, tmp_path, caplog):
    import psycopg

    from llmref.team.publish import publish

    db = make_db(pg.primary)
    publish([write_notes(tmp_path)], db.writer)
    caplog.set_level(logging.WARNING, logger="llmref.team")
    ref = open_ref(db, timeout_ms=300, cache=tmp_path / "c")
    try:
        assert team_ids(ref.search("Zephyrine"))
        with psycopg.connect(db.admin) as locker:
            locker.execute("LOCK TABLE llmref.postings IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            slow = ref.search("Zephyrine KV cache")
            waited = time.monotonic() - started
            assert slow.results and not team_ids(slow)  # local results
            assert waited < 5  # the search did not wait for the lock (300 ms timeout)
            again = ref.search("Zephyrine")  # not retried at once: no second wait, no warning
            assert not team_ids(again)
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "no answer within 300 ms" in warnings[0]
        # the lock is gone: after the backoff, searches reach the team corpus again
        wait_until(lambda: team_ids(ref.search("Zephyrine")), timeout=30, step=0.3)
    finally:
        ref.close()


def test_cards_come_from_the_local_concept_map_even_with_the_database_down(pg, tmp_path):
    import psycopg

    from llmref.team.publish import publish

    db = make_db(pg.primary)
    publish([write_notes(tmp_path)], db.writer)
    cache = tmp_path / "c"
    ref = open_ref(db, bundled=False, cache=cache)
    try:
        wait_until(lambda: ref.team.concepts.best("kv-cache"))
        with psycopg.connect(db.admin) as locker:  # a hung database: cards never wait on it
            locker.execute("LOCK TABLE llmref.entries IN ACCESS EXCLUSIVE MODE")
            box: list = []
            worker = threading.Thread(target=lambda: box.append(ref.card("kv-cache")))
            worker.start()
            worker.join(timeout=5)
            assert box, "the card waited on the database"
        card = box[0]
        assert card.entry is not None and card.entry.id.startswith("team:wiki-serving:")
    finally:
        ref.close()
    # a new process, the database unreachable (a wrong password): the cached map answers
    wrong = db.reader.replace(READER_PASSWORD, "not-the-password")
    again = open_ref(wrong, bundled=False, cache=cache)
    try:
        card = again.card("kv-cache")
        assert card is not None and card.entry is not None
        assert card.entry.id.startswith("team:wiki-serving:")
        assert not team_ids(again.search("Zephyrine"))
    finally:
        again.close()


# --- security: URLs, TLS, schema versions ------------------------------------------------------------


def test_urls_are_masked():
    from llmref.team.db import mask, scrub

    assert mask("postgresql://u:s3cr%40t@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert (
        mask("host=a,b user=u password='x y' dbname=d") == "host=a,b user=u password=*** dbname=d"
    )
    assert mask("postgres://h/db?user=u&password=pw&sslmode=require") == (
        "postgres://h/db?user=u&password=***&sslmode=require"
    )
    text = scrub(
        'failed for "s3cr@t" at postgresql://u:s3cr%40t@h/db', "postgresql://u:s3cr%40t@h/db"
    )
    assert "s3cr" not in text


def test_wrong_password_and_sslmode_are_reported_without_the_password(team_db: TeamDB, tmp_path):
    wiki = write_notes(tmp_path)
    wrong = team_db.writer.replace(WRITER_PASSWORD, "Wr0ngPassw0rd!")
    done = run_cli("publish", str(wiki), "--database", wrong)
    assert done.returncode == 2
    assert "password authentication failed" in done.stderr
    assert "Wr0ngPassw0rd" not in done.stderr and "***" in done.stderr

    tls = team_db.writer + "?sslmode=require"
    done = run_cli("publish", str(wiki), "--database", tls)
    assert done.returncode == 2
    assert "SSL" in done.stderr and WRITER_PASSWORD not in done.stderr

    reader_tls = team_db.reader + "?sslmode=require"
    found = run_cli("search", "KV cache", "-v", "--database", reader_tls)
    assert found.returncode == 0  # local results
    assert "SSL" in found.stderr and READER_PASSWORD not in found.stderr


def test_a_newer_schema_is_a_clear_error_not_a_crash(team_db: TeamDB, tmp_path):
    import psycopg

    with psycopg.connect(team_db.admin, autocommit=True) as conn:
        conn.execute("UPDATE llmref.meta SET value = '99' WHERE key = 'schema_version'")
    done = run_cli("publish", str(write_notes(tmp_path)), "--database", team_db.writer)
    assert done.returncode == 2
    assert "schema version 99, newer than this llmref understands" in done.stderr
    found = run_cli("search", "KV cache", "--database", team_db.reader)
    assert found.returncode == 0 and "newer than this llmref understands" in found.stderr
    assert "Traceback" not in found.stderr


def test_db_init_upgrades_a_version_1_schema_and_its_notes_stay_searchable(
    team_db: TeamDB, tmp_path
):
    """A database published with schema 1 (no entry_terms table): readers are told to
    upgrade, `db init` migrates it in place, and the published notes answer afterwards."""
    import psycopg

    from llmref.team.db import init_db
    from llmref.team.publish import publish

    publish([write_notes(tmp_path)], team_db.writer)
    with psycopg.connect(team_db.admin, autocommit=True) as conn:  # back to what 1 had
        conn.execute("DROP TABLE llmref.entry_terms")
        conn.execute("UPDATE llmref.meta SET value = '1' WHERE key = 'schema_version'")
    found = run_cli("search", "Zephyrine", "--database", team_db.reader)
    assert "run `llmref db init" in found.stderr and "Traceback" not in found.stderr
    assert "team:" not in found.stdout

    done = init_db(team_db.admin)
    assert "upgraded the llmref schema from version 1 to 2" in done
    with psycopg.connect(team_db.admin, autocommit=True) as conn:
        rows, entries = conn.execute(
            "SELECT (SELECT count(*) FROM llmref.entry_terms), (SELECT count(*) FROM llmref.entries)"
        ).fetchone()
    assert rows == entries == 3
    found = run_cli("search", "Zephyrine router shed load", "--database", team_db.reader)
    assert found.returncode == 0, found.stderr
    assert "team:" in found.stdout and "Zephyrine" in found.stdout


# --- replicas ------------------------------------------------------------------------------------


def test_searches_keep_answering_from_the_replica_when_the_primary_stops(tmp_path, caplog):
    import psycopg

    from llmref.team.publish import publish

    from .conftest import _require, cluster

    c = cluster.Cluster(_require(), settings={"fsync": "off"})
    try:
        db = make_db(c.primary, "replicated")
        publish([write_notes(tmp_path)], db.writer)
        standby = c.add_standby()
        cluster.wait_for_standby(standby.url(db="replicated"))

        def replicated() -> bool:
            with psycopg.connect(standby.url(db="replicated")) as conn:
                return conn.execute("SELECT docs FROM llmref.stats").fetchone()[0] == 3

        wait_until(replicated)
        hosts = f"127.0.0.1:{c.primary.port},127.0.0.1:{standby.port}"
        url = (
            f"postgresql://llmref_reader:{READER_PASSWORD}@{hosts}/replicated"
            "?target_session_attrs=any"
        )
        caplog.set_level(logging.WARNING, logger="llmref.team")
        ref = open_ref(url, bundled=False, timeout_ms=3000, cache=tmp_path / "c")
        try:
            answered: list[bool] = []
            for n in range(40):
                if n == 10:
                    c.primary.stop("fast")
                answered.append(bool(team_ids(ref.search("Zephyrine"))))
            assert all(answered), answered
            assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
            with psycopg.connect(standby.url(db="replicated")) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        finally:
            ref.close()
    finally:
        c.stop()
