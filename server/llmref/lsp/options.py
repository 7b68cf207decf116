"""Typed options (initializationOptions / the ``llmref`` settings section).

Invalid values fall back to their defaults; the problems are returned so the server can say
so once, in one message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_LANGUAGES = (
    # notes
    "markdown",
    "plaintext",
    "text",  # what Neovim and Emacs call plain text
    "restructuredtext",
    "latex",
    "tex",
    "org",
    "asciidoc",
    # model code
    "python",
    "cython",
    "jupyter",
    "julia",
    "c",
    "cpp",
    "cuda-cpp",
    "rust",
)


@dataclass
class Options:
    corpus: list[str] = field(default_factory=list)  # extra corpus folders
    bundled: bool = True  # include the bundled corpus
    exclude: list[str] = field(default_factory=list)  # gitignore-style globs not to index
    max_file_mb: float | None = None  # files over this are skipped (None: the default, 5 MB)
    languages: list[str] = field(default_factory=lambda: list(DEFAULT_LANGUAGES))  # or ["*"]
    hover_enabled: bool = True
    hover_max_lines: int = 12
    completion_enabled: bool = True
    completion_snippets: bool = True
    database: str | None = None  # the team corpus (PostgreSQL URL); None: config/env decide
    database_timeout_ms: int | None = None  # per team-database query (default 300)

    def language_enabled(self, language_id: str | None) -> bool:
        if "*" in self.languages:
            return True
        return (language_id or "plaintext").lower() in self.languages

    def corpus_key(self) -> tuple:
        """What decides which corpus is loaded (a change means reloading)."""
        return (
            tuple(self.corpus),
            self.bundled,
            tuple(self.exclude),
            self.max_file_mb,
            self.database,
            self.database_timeout_ms,
        )


def _strings(value: Any) -> list[str] | None:
    """A list of strings (one string is a list of one); None for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    return None


def _get(data: dict, *path: str) -> Any:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def parse_options(raw: Any) -> tuple[Options, list[str]]:
    """Options from a JSON object; (options, problems). Unknown keys are ignored.

    Accepted shapes: ``{"corpus": [...], "languages": [...], "hover": {"enabled": true,
    "maxLines": 12}, "completion": {"enabled": true, "snippets": true}, "bundled": true}``,
    optionally nested under ``"llmref"``; ``"database": "postgresql://…"`` and
    ``"databaseTimeoutMs": 300`` for the team corpus."""
    opts = Options()
    problems: list[str] = []
    if raw is None:
        return opts, problems
    if not isinstance(raw, dict):
        return opts, [f"options must be an object, got {type(raw).__name__}"]
    if isinstance(raw.get("llmref"), dict):
        raw = raw["llmref"]

    for key, attr, problem in (
        ("corpus", "corpus", "corpus must be a list of folder paths"),
        ("exclude", "exclude", "exclude must be a list of globs"),
    ):
        if raw.get(key) is not None:
            given = _strings(raw[key])
            if given is not None:
                setattr(opts, attr, [x for x in given if x.strip()])
            else:
                problems.append(problem)

    max_mb = raw.get("maxFileMB")
    if max_mb is not None:
        if isinstance(max_mb, (int, float)) and not isinstance(max_mb, bool) and max_mb > 0:
            opts.max_file_mb = float(max_mb)
        else:
            problems.append("maxFileMB must be a number greater than 0")

    if raw.get("languages") is not None:
        languages = _strings(raw["languages"])
        if languages:
            opts.languages = [x.lower() for x in languages]
        else:
            problems.append('languages must be a non-empty list of language ids (or ["*"])')

    for path, attr in (
        (("bundled",), "bundled"),
        (("hover", "enabled"), "hover_enabled"),
        (("completion", "enabled"), "completion_enabled"),
        (("completion", "snippets"), "completion_snippets"),
    ):
        value = _get(raw, *path)
        if value is not None:
            if isinstance(value, bool):
                setattr(opts, attr, value)
            else:
                problems.append(f"{'.'.join(path)} must be true or false")

    database = raw.get("database")
    if database is not None:
        if isinstance(database, str):
            opts.database = database.strip() or None
        else:
            problems.append("database must be a PostgreSQL URL")
    timeout = raw.get("databaseTimeoutMs")
    if timeout is not None:
        if isinstance(timeout, int) and not isinstance(timeout, bool) and 10 <= timeout <= 600_000:
            opts.database_timeout_ms = timeout
        else:
            problems.append("databaseTimeoutMs must be a whole number from 10 to 600000")

    max_lines = _get(raw, "hover", "maxLines")
    if max_lines is not None:
        if isinstance(max_lines, int) and not isinstance(max_lines, bool) and 3 <= max_lines <= 200:
            opts.hover_max_lines = max_lines
        else:
            problems.append("hover.maxLines must be a whole number from 3 to 200")
    return opts, problems
