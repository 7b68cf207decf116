"""Where the corpus and the cache are: bundled corpus, extra folders from flags, the
``LLMREF_CORPUS`` environment variable and the user's config file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from platformdirs import user_cache_dir, user_config_dir

from .corpus.loader import DEFAULT_MAX_BYTES, Problem, ScanRules

ENV_CORPUS = "LLMREF_CORPUS"  # extra corpus folders, separated by os.pathsep
ENV_CACHE = "LLMREF_CACHE_DIR"
ENV_CONFIG = "LLMREF_CONFIG"
ENV_DATABASE = "LLMREF_DATABASE"  # the team corpus (PostgreSQL URL), see team/
DEFAULT_DATABASE_TIMEOUT_MS = 300


def bundled_corpus_dir() -> Path:
    """The corpus shipped inside the package (``llmref/bundled`` in a wheel), or the source
    tree's ``corpus/`` when running from a checkout or an editable install."""
    installed = Path(__file__).resolve().parent / "bundled"
    if installed.is_dir() and any(installed.glob("*.md")):
        return installed
    return Path(__file__).resolve().parents[2] / "corpus"


def glossary_paths(found: list[Path]) -> list[Path]:
    """The bundled glossary first (it is product data, kept even without the bundled
    corpus), then the ``glossary.yaml`` files found in the user's corpus folders."""
    bundled = bundled_corpus_dir() / "glossary.yaml"
    return ([bundled] if bundled.is_file() else []) + [p for p in found if p != bundled]


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or user_cache_dir("llmref")) / "index"


def default_cache_dir() -> Path:
    """The platform's cache folder, whatever ``LLMREF_CACHE_DIR`` says."""
    return Path(user_cache_dir("llmref")) / "index"


def glossary_cache(settings: Settings) -> Path | None:
    """Where compiled glossaries are kept (a private folder beside the indexes), or None when
    it cannot be had: a glossary then loads from its YAML every time."""
    from .cache import UnsafeCache, private_dir

    try:
        private_dir(settings.cache)  # refused as a whole, like the indexes' folder
        return private_dir(settings.cache / "glossary")
    except (OSError, UnsafeCache):
        return None


def config_file() -> Path:
    return Path(os.environ.get(ENV_CONFIG) or Path(user_config_dir("llmref")) / "config.yaml")


@dataclass
class Settings:
    corpora: list[Path] = field(default_factory=list)  # user folders, in order
    bundled: bool = True
    cache: Path = field(default_factory=cache_dir)
    problems: list[Problem] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)  # gitignore-style globs
    max_file_bytes: int = DEFAULT_MAX_BYTES
    database: str | None = None  # the team corpus: a PostgreSQL URL (a reader role's)
    database_timeout_ms: int = DEFAULT_DATABASE_TIMEOUT_MS  # per team-database query

    def rules(self) -> ScanRules:
        return ScanRules(tuple(self.exclude), self.max_file_bytes)

    def roots(self) -> list[tuple[Path, str]]:
        """(path, display label) of every corpus root; the bundled corpus has no label."""
        roots: list[tuple[Path, str]] = []
        if self.bundled:
            roots.append((bundled_corpus_dir(), ""))
        used: set[str] = set()
        for path in self.corpora:
            label = base = path.expanduser().name or str(path)
            n = 2
            while label in used:  # two folders of the same name: their paths must differ
                label = f"{base}-{n}"
                n += 1
            used.add(label)
            roots.append((path, label))
        return roots


def load_settings(
    extra: list[str] | None = None, *, bundled: bool = True, database: str | None = None
) -> Settings:
    """Corpus folders from the config file, then LLMREF_CORPUS, then the command line; the
    team database from ``database:`` in the config file, LLMREF_DATABASE, then ``database``."""
    settings = Settings(bundled=bundled)
    seen: set[str] = set()

    def add(raw: str) -> None:
        raw = raw.strip()
        if raw and raw not in seen:
            seen.add(raw)
            settings.corpora.append(Path(raw).expanduser())

    path = config_file()
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            corpus = data.get("corpus", []) if isinstance(data, dict) else None
            if isinstance(corpus, str):
                corpus = [corpus]
            if not isinstance(corpus, list):
                raise ValueError("'corpus' must be a list of folders")
            for item in corpus:
                add(str(item))
            if isinstance(data, dict) and data.get("bundled") is False:
                settings.bundled = False
            if isinstance(data, dict):
                _scan_options(data, settings, str(path))
        except (yaml.YAMLError, ValueError, OSError, UnicodeDecodeError) as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            settings.problems.append(
                Problem(str(path), line + 1 if line is not None else None, f"config ignored: {exc}")
            )
    for raw in os.environ.get(ENV_CORPUS, "").split(os.pathsep):
        add(raw)
    for raw in extra or []:
        add(raw)
    env_database = os.environ.get(ENV_DATABASE, "").strip()
    if env_database:
        settings.database = env_database
    if database is not None:
        settings.database = database.strip() or None
    return settings


def _scan_options(data: dict, settings: Settings, where: str) -> None:
    """``exclude:`` (globs) and ``max_file_mb:`` from the config file."""
    exclude = data.get("exclude")
    if isinstance(exclude, str):
        exclude = [exclude]
    if exclude is not None:
        if isinstance(exclude, list) and all(isinstance(x, str) for x in exclude):
            settings.exclude.extend(x for x in exclude if x.strip())
        else:
            settings.problems.append(Problem(where, None, "'exclude' must be a list of globs"))
    database = data.get("database")
    if database is not None:
        if isinstance(database, str):
            settings.database = database.strip() or None
        else:
            settings.problems.append(Problem(where, None, "'database' must be a PostgreSQL URL"))
    timeout = data.get("database_timeout_ms")
    if timeout is not None:
        if isinstance(timeout, int) and not isinstance(timeout, bool) and 10 <= timeout <= 600_000:
            settings.database_timeout_ms = timeout
        else:
            settings.problems.append(
                Problem(
                    where, None, "'database_timeout_ms' must be a whole number from 10 to 600000"
                )
            )
    size = data.get("max_file_mb")
    if size is not None:
        if isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0:
            settings.max_file_bytes = int(size * 1_000_000)
        else:
            settings.problems.append(Problem(where, None, "'max_file_mb' must be a number > 0"))
