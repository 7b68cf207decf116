"""Finding and reading corpus files. Bad input becomes a Problem; everything else loads."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from .entry import Entry

log = logging.getLogger("llmref.corpus")

NOTE_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".txt"})
GLOSSARY_NAMES = ("glossary.yaml", "glossary.yml")
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})
DEFAULT_MAX_BYTES = 5_000_000  # files over this are skipped with a warning
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


@dataclass(frozen=True, slots=True)
class NoteFile:
    """A note file found by ``scan``, with what tells whether it changed."""

    path: Path  # absolute
    display: str  # how cards and results name it
    sort: str  # corpus order: root order, then display path
    size: int
    mtime_ns: int


@dataclass
class Scan:
    notes: list[NoteFile] = field(default_factory=list)
    glossaries: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ScanRules:
    """What not to index: hidden folders and files, ``.gitignore``d paths, ``exclude``
    globs (gitignore syntax, relative to each corpus root), files over ``max_bytes``."""

    exclude: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    gitignore: bool = True

    def key(self) -> str:
        return json.dumps([list(self.exclude), self.max_bytes, self.gitignore])


def _spec(lines: Iterable[str]):
    import pathspec  # only when there is something to match

    return pathspec.GitIgnoreSpec.from_lines(list(lines))


def _ignored(specs: list[tuple[str, object]], rel: str) -> bool:
    """git's rule: the deepest .gitignore that has an opinion decides."""
    for base, spec in reversed(specs):
        if base and not (rel + "/").startswith(base + "/"):
            continue
        sub = rel[len(base) + 1 :] if base else rel
        result = spec.check_file(sub).include  # type: ignore[attr-defined]
        if result is not None:
            return bool(result)
    return False


def _walk(
    root: Path, rules: ScanRules, problems: list[Problem]
) -> Iterable[tuple[os.DirEntry, str]]:
    """(entry, path relative to ``root``) of the files under ``root`` in sorted order, minus
    hidden, skipped and ignored paths."""
    specs: list[tuple[str, object]] = []
    if rules.exclude:
        specs.append(("", _spec(rules.exclude)))
    stack: list[tuple[str, int]] = [("", len(specs))]  # (relative dir, specs in force)
    while stack:
        rel_dir, depth = stack.pop()
        del specs[depth:]
        folder = root / rel_dir if rel_dir else root
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            problems.append(Problem(str(folder), None, f"cannot list: {exc.strerror or exc}"))
            continue
        if rules.gitignore and any(c.name == ".gitignore" for c in children):
            try:
                lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
                specs.append((rel_dir, _spec(lines.splitlines())))
            except OSError:
                pass
        subdirs: list[str] = []
        for child in children:
            if child.name.startswith("."):
                continue
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            try:
                is_dir = child.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if child.name in SKIP_DIRS or _ignored(specs, rel + "/"):
                    continue
                subdirs.append(rel)
            elif not _ignored(specs, rel):
                yield child, rel
        # depth-first in sorted order: push in reverse
        for rel in reversed(subdirs):
            stack.append((rel, len(specs)))


def scan(roots: Iterable[tuple[Path, str]], rules: ScanRules | None = None) -> Scan:
    """Note files (with stat), glossary files and problems under the given roots.

    ``roots``: (path, label) pairs; the label prefixes display names ("" for the bundled
    corpus). A root may be a single file. Symbolic links to folders are not followed (no
    loops); a linked file is read like any other."""
    rules = rules or ScanRules()
    out = Scan()
    seen: set[Path] = set()
    for order, (root, label) in enumerate(roots):
        root = root.expanduser()
        if not root.exists():
            out.problems.append(Problem(str(root), None, "corpus path does not exist, skipped"))
            continue
        root = root.resolve()
        if root.is_file():
            candidates: Iterable[tuple[Path | os.DirEntry, str]] = [(root, root.name)]
        else:
            candidates = _walk(root, rules, out.problems)
        for item, rel in candidates:
            name = item.name
            if name not in GLOSSARY_NAMES and (
                os.path.splitext(name)[1].lower() not in NOTE_SUFFIXES or name in SKIP_FILES
            ):
                continue
            try:
                st = item.stat()  # follows a symbolic link to a file
            except OSError:
                continue
            if not S_ISREG(st.st_mode):
                continue  # FIFOs, sockets, devices: never read
            path = Path(item.path) if isinstance(item, os.DirEntry) else item
            # a file reached twice (a link to another note) is indexed once
            is_link = item.is_symlink() if isinstance(item, os.DirEntry) else path.is_symlink()
            key = path.resolve() if is_link else path
            if key in seen:
                continue
            seen.add(key)
            if name in GLOSSARY_NAMES:
                out.glossaries.append(path)
                continue
            if st.st_size > rules.max_bytes:
                out.problems.append(
                    Problem(
                        str(path),
                        None,
                        f"{st.st_size / 1e6:.1f} MB, over the {rules.max_bytes / 1e6:g} MB "
                        "size cap: skipped (raise `maxFileMB` to index it)",
                    )
                )
                continue
            display = f"{label}/{rel}" if label else rel
            out.notes.append(
                NoteFile(path, display, f"{order:04d}/{display}", st.st_size, st.st_mtime_ns)
            )
    return out


def discover(
    roots: Iterable[tuple[Path, str]], rules: ScanRules | None = None
) -> tuple[list[tuple[Path, str]], list[Path], list[Problem]]:
    """(note files with display names, glossary files, problems) under the given roots."""
    found = scan(roots, rules)
    return [(n.path, n.display) for n in found.notes], found.glossaries, found.problems


def read_note(path: Path) -> tuple[bytes | None, str | None, Problem | None]:
    """(bytes, text, problem) of one note file: unreadable, binary or undecodable files
    give a problem naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, None, Problem(str(path), None, f"cannot read: {exc.strerror or exc}")
    text, problem = decode(data, path)
    if problem is not None or text is None:
        return data, None, problem or Problem(str(path), None, "unreadable")
    return data, text, None


def load_notes(
    notes: Iterable[tuple[Path, str]],
) -> tuple[list[Entry], list[SourceFile], list[Problem]]:
    """Parse note files; an unreadable, binary or undecodable file is reported and skipped."""
    from .parse import parse_markdown  # markdown-it only when notes are parsed

    entries: list[Entry] = []
    files: list[SourceFile] = []
    problems: list[Problem] = []
    for path, display in notes:
        data, text, problem = read_note(path)
        if problem is not None or text is None or data is None:
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
