"""One entry as the team database stores it: the same fields, tokens and lengths the local
Whoosh index gets (``index.document`` through ``normalize.tokens``), as term frequencies,
Whoosh-quantized field lengths and a tsvector literal with positions and field weights.
Runs in the publish workers. Core: no pygls, no lsprotocol, no database driver.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass

from .. import normalize
from ..corpus.entry import Entry
from ..glossary import Glossary
from ..index import document
from ..ranking import about_candidates, about_key, names_text

PREFIX = "team:"
# field ids of lexicon/postings (the Whoosh fields of index.document)
FIELDS = ("question", "names", "answer", "concepts", "answer_concepts")
FIELD_ID = {name: i for i, name in enumerate(FIELDS)}
TEXT_FIELDS = ("question", "names", "answer")
LABEL = {"question": "A", "names": "B", "answer": "C", "concepts": "D", "answer_concepts": "D"}
MAX_TERM_BYTES = 240  # longer "words" (a 300-character identifier run) are not indexed
MAX_POSITION = 16383  # PostgreSQL's tsvector position limit
MAX_POSITIONS = 256  # positions a tsvector keeps per lexeme
MAX_TSV_TOKENS = 120_000  # a huge section keeps its first tokens in the tsvector
FIELD_GAP = 4  # positions between fields in the tsvector (no phrase spans two fields)
K1, B = 1.2, 0.75  # Whoosh's BM25F defaults (index.SearchIndex scores with BM25F())
TF_MAX = 32767


def quantized(length: int) -> int:
    """A field length as Whoosh stores and scores it (one byte, then back; 0 counts as 1)."""
    from whoosh.util.numeric import byte_to_length, length_to_byte

    b = length_to_byte(length)
    return byte_to_length(b) if b else 1


@dataclass
class Doc:
    entry: Entry
    tfs: dict[tuple[int, str], int]  # (field id, term) -> frequency
    sizes: list[int]  # exact field lengths (token counts), per FIELDS
    lens: list[int]  # quantized lengths, per FIELDS
    tsv: str  # tsvector literal
    data: str = ""  # the entry as the store writes it (entry_json)


def _quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def strip_nul(entry: Entry) -> bool:
    """Remove NUL characters (PostgreSQL text cannot hold them); True when there were any."""
    changed = False
    for name in ("id", "question", "answer", "source", "path", "section", "layout", "detail"):
        value = getattr(entry, name)
        if isinstance(value, str) and "\x00" in value:
            setattr(entry, name, value.replace("\x00", ""))
            changed = True
    return changed


def team_entry(entry: Entry) -> Entry:
    """The entry as readers see it: ``team:`` before its id and its source."""
    if not entry.id.startswith(PREFIX):
        entry.id = PREFIX + entry.id
    if not entry.source.startswith(PREFIX):
        entry.source = PREFIX + entry.source
    entry.group = None
    entry.also_in = []
    return entry


def make_doc(entry: Entry, glossary: Glossary) -> Doc:
    """The stored form of a tagged, team-prefixed entry."""
    fields = document(entry, names_text(entry, glossary))
    tfs: dict[tuple[int, str], int] = {}
    sizes = [0] * len(FIELDS)
    lexemes: dict[str, list[int]] = {}  # term -> tsvector positions (field by range)
    starts: list[tuple[int, str]] = []  # (first position, weight) of each field
    base = 1
    used = 0
    for name in TEXT_FIELDS:
        fid = FIELD_ID[name]
        starts.append((base, LABEL[name]))
        top = -1
        count = 0
        for text, pos, _s, _e in normalize.token_tuples(fields[name], subwords=True):
            count += 1
            if len(text) > MAX_TERM_BYTES // 4 and len(text.encode("utf-8")) > MAX_TERM_BYTES:
                continue
            key = (fid, text)
            tfs[key] = tfs.get(key, 0) + 1
            if used < MAX_TSV_TOKENS:
                used += 1
                if pos > top:
                    top = pos
                positions = lexemes.get(text)
                if positions is None:
                    lexemes[text] = [base + pos]
                elif len(positions) < MAX_POSITIONS:
                    positions.append(base + pos)
        sizes[fid] = count
        base = min(base + top + 1 + FIELD_GAP, MAX_POSITION)
    starts.append((base, "D"))
    for name in ("concepts", "answer_concepts"):
        fid = FIELD_ID[name]
        for cid in fields[name].split():
            sizes[fid] += 1
            tfs[(fid, cid)] = tfs.get((fid, cid), 0) + 1
            positions = lexemes.setdefault(cid, [])
            if len(positions) < MAX_POSITIONS:
                positions.append(base)
    tsv = " ".join(f"{_quote(t)}:{_positions(p, starts)}" for t, p in lexemes.items())
    lens = [quantized(n) for n in sizes]
    tf = {k: min(v, TF_MAX) for k, v in tfs.items()}
    return Doc(entry, tf, sizes, lens, tsv, fast_json(entry))


def _positions(positions: list[int], starts: list[tuple[int, str]]) -> str:
    """A lexeme's tsvector positions: distinct (a catenation shares its first part's), at most
    16383, each with its field's weight."""
    out: list[str] = []
    seen: set[int] = set()
    for p in positions:
        q = p if p < MAX_POSITION else MAX_POSITION
        if q in seen:
            continue
        seen.add(q)
        label = "A"
        for first, weight in starts:
            if p >= first:
                label = weight
        out.append(f"{q}{label}")
    return ",".join(out)


_ENTRY_FIELDS = [f for f in Entry.__dataclass_fields__ if f not in ("group", "also_in")]


def fast_json(entry: Entry) -> str:
    """``store.entry_json`` without dataclasses.asdict's deep copies (the same text)."""
    data = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """A value for COPY's text format."""
    return value.translate(_COPY_ESCAPE)


def posting_lines(note: int, ordinal: int, doc: Doc) -> list[str]:
    """The entry's postings as COPY text rows of the publish stage table:
    note, ordinal, field, term, tf, (quantized) field length."""
    return [
        f"{note}\t{ordinal}\t{fid}\t{copy_text(term)}\t{tf}\t{doc.lens[fid]}\n"
        for (fid, term), tf in doc.tfs.items()
    ]


def about_lines(note: int, ordinal: int, rows: list[tuple[str, int, bytes]]) -> list[str]:
    """The entry's concept ranks as COPY text rows: note, ordinal, concept, tier, key."""
    return [
        f"{note}\t{ordinal}\t{copy_text(c)}\t{tier}\t\\\\x{key.hex()}\n" for c, tier, key in rows
    ]


def rank_key(rank: tuple) -> bytes:
    """``ranking.about_key``'s tuple as bytes in the same order, up to its (source, line)
    tail (the database breaks those ties by corpus order: file, then position)."""
    out = bytearray()
    for part in rank:
        if isinstance(part, str):
            break
        if isinstance(part, bool):
            out += b"\x01" if part else b"\x00"
        elif isinstance(part, int):
            out += (max(min(part, (1 << 62) - 1), -(1 << 62)) + (1 << 62)).to_bytes(8, "big")
        elif isinstance(part, float):
            bits = struct.unpack(">q", struct.pack(">d", part))[0]
            bits = bits ^ 0x7FFFFFFFFFFFFFFF if bits < 0 else bits
            out += (bits + (1 << 63)).to_bytes(8, "big")
    return bytes(out)


def about_rows(entry: Entry, glossary: Glossary) -> list[tuple[str, int, bytes]]:
    """(concept, tier, key) rows: where the entry ranks among each concept's Q&As."""
    out: list[tuple[str, int, bytes]] = []
    for cid in sorted(about_candidates(entry, glossary)):
        concept = glossary.get(cid)
        rank = about_key(entry, concept) if concept is not None else None
        if rank is not None:
            out.append((cid, rank[0], rank_key(rank)))
    return out


def idf(df: int, docs: int) -> float:
    """Whoosh's BM25 idf of a term in ``df`` of ``docs`` entries."""
    return math.log(max(docs, 1) / (df + 1)) + 1


def impact(tf: int, length: int, average: float) -> float:
    """BM25's term-frequency part (what orders a posting list)."""
    norm = (1 - B) + B * length / (average or 1.0)
    return tf * (K1 + 1) / (tf + K1 * norm)


def digest_key(fingerprint: str, data_digest: str) -> str:
    return f"{fingerprint[:16]}:{data_digest}"


def path_hash(path: str) -> str:
    return hashlib.sha1(path.encode("utf-8", "replace")).hexdigest()[:4]
