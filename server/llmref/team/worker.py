"""Publish workers: ``python -m llmref.team.worker`` parses, tags and tokenizes its share of
the changed note files and streams them back (``workers.send_frame``: framed pickles on
stdout); the parent writes them to the database. Started fresh (fork +
exec, never a bare fork of a threaded process), and dies with its parent
(``workers.die_with_parent`` and the stdin watch).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..corpus.loader import NoteFile
from ..glossary import Glossary
from .docs import Doc, about_lines, about_rows, make_doc, posting_lines, strip_nul, team_entry


@dataclass
class FileOut:
    """One note file, ready for the database."""

    index: int  # the note's number in this publish (the stage tables' key, with the ordinal)
    path: str  # absolute, on this machine
    display: str
    sort: str
    digest: str
    docs: list[Doc] = field(default_factory=list)  # (their tfs are in ``postings``)
    postings: str = ""  # COPY text rows: index, ordinal, field, term, tf, field length
    about: str = ""  # COPY text rows: index, ordinal, concept, tier, key
    problems: list[list] = field(default_factory=list)  # [line, message]


def prepare(index: int, note: NoteFile, glossary: Glossary, slug: str | None) -> FileOut:
    """Read, parse, tag and tokenize one note file (a broken file gives a problem)."""
    from ..build import process

    fr = process(note, glossary, slug)
    out = FileOut(index, str(note.path), note.display, note.sort, fr.digest)
    out.problems = list(fr.problems)
    postings: list[str] = []
    about: list[str] = []
    for entry in fr.entries:
        if strip_nul(entry):
            out.problems.append(
                [entry.line, "NUL characters removed (PostgreSQL text cannot hold them)"]
            )
        team_entry(entry)
        try:
            doc = make_doc(entry, glossary)
            rows = about_rows(entry, glossary)
        except Exception as exc:  # one odd entry must not lose the file
            out.problems.append([entry.line, f"entry skipped: {type(exc).__name__}: {exc}"])
            continue
        ordinal = len(out.docs)
        postings += posting_lines(index, ordinal, doc)
        about += about_lines(index, ordinal, rows)
        doc.tfs = {}
        out.docs.append(doc)
    out.postings = "".join(postings)
    out.about = "".join(about)
    return out


def _publish_shard(job: dict, send) -> None:
    from ..workers import job_glossary

    glossary = job_glossary(job, "publish")
    for index, path, display, sort, size, mtime_ns, slug in job["notes"]:
        note = NoteFile(Path(path), display, sort, size, mtime_ns)
        send("file", prepare(index, note, glossary, slug))
    send("done", None)


def main() -> int:
    from ..workers import serve_frames

    return serve_frames(_publish_shard)


if __name__ == "__main__":
    # run the module's own copy (not __main__'s): what it pickles must name llmref.team.worker
    from llmref.team.worker import main as _main

    sys.exit(_main())
