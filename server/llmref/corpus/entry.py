"""The record every layer passes around: one question and its answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Entry.layout: the question layouts, and the other text of a note (see corpus/parse.py)
QUESTION_LAYOUTS = frozenset({"qa-heading", "numbered-heading", "setext", "bold-q", "numbered-line"})
TEXT_LAYOUTS = frozenset({"section", "preamble", "file"})


@dataclass(slots=True)
class Entry:
    id: str  # stable: "<document slug>:<hash of the question>"
    question: str  # plain text, numbering and markup removed
    answer: str  # markdown, cleaned (search-entity links -> text); images stay references
    source: str  # display path, e.g. "llm-interview-104-questions.md"
    path: str  # absolute path of the corpus file
    line: int  # 1-based line of the question
    end_line: int  # 1-based last line of the answer
    section: str | None = None  # the heading the question sits under
    layout: str = ""  # QUESTION_LAYOUTS (qa-heading, numbered-heading, …) or TEXT_LAYOUTS
    detail: str = ""  # text between the question and its "回答" marker (question details)
    has_answer: bool = True  # False: nothing but the question (or only an image)
    external: bool = False  # the answer is only a link to elsewhere
    concepts: list[str] = field(default_factory=list)  # glossary concept ids, by relevance
    question_concepts: list[str] = field(default_factory=list)  # those the question names
    group: str | None = None  # entries asking the same question share a group key
    also_in: list[str] = field(default_factory=list)  # ids of the other entries of the group

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        return cls(**data)


def result_json(entry: Entry, score: float | None = None) -> dict:
    """An entry as the CLI's --json and the llmref.search command give it."""
    data = {
        "id": entry.id,
        "question": entry.question,
        "answer": entry.answer,
        "source": entry.source,
        "line": entry.line,
        "end_line": entry.end_line,
        "path": entry.path,
        "section": entry.section,
        "concepts": entry.concepts,
        "has_answer": entry.has_answer,
        "external": entry.external,
        "also_in": entry.also_in,
    }
    if score is not None:
        data["score"] = round(score, 4)
    return data
