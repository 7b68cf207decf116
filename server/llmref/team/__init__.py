"""The team corpus on PostgreSQL: ``llmref publish`` writes note folders to a shared
database, ``llmref db init`` creates its schema and roles, and readers (``llmref search``,
``llmref serve``) add it to what they search (``TeamIndex``). See README "Team corpus".

The submodules import psycopg only when a database is used (``db.driver``): without the
optional dependency llmref works as before, and a configured database says what to install.
"""

from __future__ import annotations

from .db import ENV_DATABASE, TeamError, mask

__all__ = ["ENV_DATABASE", "TeamError", "mask"]
