"""The entry store (SQLite) on its own."""

from __future__ import annotations

from pathlib import Path

from llmref.store import Store, sort_key


def test_concept_tiers_follow_writes_from_this_and_other_connections(tmp_path: Path):
    """Which tiers list a concept is cached per connection, and the cache follows every
    write: this store's own and another process's (another connection to the same file).
    Keys sort by tier first, as ranking.about_key's do."""
    path = tmp_path / "state.sqlite"
    store = Store(path, create=True)
    with store.tx() as db:
        db.execute("INSERT INTO about VALUES ('rope', 2, ?, 1)", (sort_key(2, "z"),))
    assert store._tiers("rope") == (0, 1, 2, 3)  # no question names it: every tier
    with store.tx() as db:  # this connection's own write
        db.execute("INSERT INTO about VALUES ('rope', 1, ?, 2)", (sort_key(1, "z"),))
    assert store._tiers("rope") == (1, 2)
    other = Store(path)  # e.g. a CLI syncing the same generation
    with other.tx() as db:
        db.execute("INSERT INTO about VALUES ('rope', 0, ?, 3)", (sort_key(0, "z"),))
    assert store._tiers("rope") == (0, 2)
    other.close()
    store.close()
