"""Finding and reading corpus files. Bad input becomes a Problem; everything else loads."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .entry import Entry

log = logging.getLogger("llmref.corpus")

NOTE_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".txt"})
GLOSSARY_NAMES = ("glossary.yaml", "glossary.yml")
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})
# files of the bundled corpus folder that are documentation, not notes
SKIP_FILES = frozenset({"SOURCES.md"})


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass
class SourceFile:
    path: Path  # absolute
    display: str  # how cards and results name it
    digest: str  # sha256 of the bytes
    size: int


@dataclass
class Corpus:
    entries: list[Entry] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)
    glossaries: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def decode(data: bytes, path: Path) -> tuple[str | None, Problem | None]:
    """UTF-8 (with or without BOM), then GB18030; binary and undecodable data are refused."""
    if b"\x00" in data[:8192]:
        return None, Problem(str(path), None, "binary file, skipped")
    first: UnicodeDecodeError | None = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            first = first or exc
            continue
        if encoding != "utf-8-sig":
            log.info("%s: read as %s", path, encoding)
        return text, None
    assert first is not None
    line = data[: first.start].count(b"\n") + 1
    return None, Problem(
        str(path), line, f"not UTF-8 or GB18030 text (bad byte at offset {first.start}), skipped"
    )


def _walk(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") or p in SKIP_DIRS for p in rel[:-1]) or rel[-1].startswith("."):
            continue
        yield path


def discover(
    roots: Iterable[tuple[Path, str]],
) -> tuple[list[tuple[Path, str]], list[Path], list[Problem]]:
    """(note files with display names, glossary files, problems) under the given roots.

    ``roots``: (path, label) pairs; the label prefixes display names ("" for the bundled
    corpus). A root may be a single file.
    """
    notes: list[tuple[Path, str]] = []
    glossaries: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for root, label in roots:
        root = root.expanduser()
        if not root.exists():
            problems.append(Problem(str(root), None, "corpus path does not exist, skipped"))
            continue
        root = root.resolve()
        candidates = [root] if root.is_file() else list(_walk(root))
        base = root.parent if root.is_file() else root
        for path in candidates:
            if not path.is_file() or path in seen:
                continue
            seen.add(path)
            rel = path.relative_to(base).as_posix()
            if path.name in GLOSSARY_NAMES:
                glossaries.append(path)
            elif path.suffix.lower() in NOTE_SUFFIXES and path.name not in SKIP_FILES:
                notes.append((path, f"{label}/{rel}" if label else rel))
    return notes, glossaries, problems


def load_notes(
    notes: Iterable[tuple[Path, str]],
) -> tuple[list[Entry], list[SourceFile], list[Problem]]:
    """Parse note files; an unreadable, binary or undecodable file is reported and skipped."""
    from .parse import parse_markdown  # markdown-it only when notes are parsed

    entries: list[Entry] = []
    files: list[SourceFile] = []
    problems: list[Problem] = []
    for path, display in notes:
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Problem(str(path), None, f"cannot read: {exc.strerror or exc}"))
            continue
        text, problem = decode(data, path)
        if problem is not None or text is None:
            problems.append(problem or Problem(str(path), None, "unreadable"))
            continue
        try:
            parsed = parse_markdown(text, display, str(path), problems)
        except Exception as exc:  # a parser bug must not lose the other files
            log.exception("parsing %s failed", path)
            problems.append(Problem(str(path), None, f"could not parse: {exc}"))
            continue
        files.append(SourceFile(path, display, hashlib.sha256(data).hexdigest(), len(data)))
        entries.extend(parsed)
    return entries, files, problems


def digests(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(path, sha256) of each file, for index fingerprints; unreadable files say so."""
    out: list[tuple[str, str]] = []
    for path in paths:
        try:
            out.append((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
        except OSError as exc:
            out.append((str(path), f"unreadable:{exc.errno}"))
    return out


def load_corpus(roots: Iterable[tuple[Path, str]]) -> Corpus:
    """Discover and parse everything under the roots (warnings are logged)."""
    notes, glossaries, problems = discover(roots)
    entries, files, file_problems = load_notes(notes)
    corpus = Corpus(entries, files, glossaries, problems + file_problems)
    return corpus
