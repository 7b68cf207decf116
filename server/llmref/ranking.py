"""Per-entry facts the index and the cards rank by: which concepts an entry names (tagging),
the names indexed for them, and how well an entry answers a concept. Each is a function of
one entry (and the glossary), so the index can be updated one file at a time.
Core: no pygls, no lsprotocol, no Whoosh."""

from __future__ import annotations

from .corpus.entry import Entry
from .glossary import Glossary


def tag_entry(entry: Entry, glossary: Glossary) -> None:
    """Set the concepts an entry names: those of its question first, then its answer's."""
    in_question = glossary.concepts_in(entry.question)
    in_answer = glossary.concepts_in(f"{entry.detail}\n{entry.answer}")
    entry.question_concepts = in_question
    entry.concepts = in_question + [c for c in in_answer if c not in in_question]


def names_text(entry: Entry, glossary: Glossary) -> str:
    """The names of the concepts the question names (indexed in the names field)."""
    lines: list[str] = []
    for cid in entry.question_concepts:
        concept = glossary.get(cid)
        if concept is not None:
            lines.append(" ; ".join(concept.names()))
    return "\n".join(lines)


def about_key(entry: Entry, concept: str) -> tuple:
    """How well ``entry`` answers ``concept``: smaller is better. Entries whose question
    names the concept come first (answered, specific questions before the rest), then those
    whose answer names it (by how prominently). The store breaks ties by corpus order."""
    quality = (not entry.has_answer, entry.external)
    if concept in entry.question_concepts:
        return (0, *quality, len(entry.question_concepts))
    rest = [c for c in entry.concepts if c not in entry.question_concepts]
    return (1, *quality, rest.index(concept) if concept in rest else len(rest))
