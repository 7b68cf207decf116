"""The full-text index (Whoosh), behind a small interface of our own.

A ``SearchIndex`` is one Whoosh folder. Entries are documents keyed by entry id (a column,
so a hit's id is read without unpickling stored fields) and by file (so one file's entries
are replaced on their own: incremental indexing). Whoosh is single-writer: writes happen
under the index's lock (see build.py), readers never wait.

Whoosh unpickles parts of its files (the schema in the table of contents, block headers,
term infos). Three things keep that from becoming a way to run code:

* we only open folders under a verified private cache (cache.py);
* every unpickling Whoosh does goes through an unpickler that only knows the handful of
  classes an index of ours contains (``_SafeUnpickler``);
* a manifest signed with the per-install key records the table of contents' digest and the
  size of every file; an index whose manifest does not verify is never opened.

Files are read, never memory-mapped: a file truncated under a running server is an error we
catch (and repair), not a SIGBUS.

Queries arrive as engine-neutral ``Clause`` lists (see lookup.py).
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import importlib
import io
import json
import logging
import os
import pickle
import sys
import types
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import whoosh.codec.whoosh3
import whoosh.columns
import whoosh.compat
import whoosh.externalsort
import whoosh.filedb.compound
import whoosh.filedb.structfile
import whoosh.formats
import whoosh.index
from whoosh import formats
from whoosh import query as wq
from whoosh.analysis import Token, Tokenizer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile
from whoosh.scoring import BM25F
from whoosh.system import pack_uint

from . import cache, normalize
from .bulk import BulkScorer, compile_plan
from .corpus.entry import Entry

log = logging.getLogger("llmref.index")

SCHEMA_VERSION = "9"
MANIFEST = "manifest.json"
HASH_ALL_BYTES = 16_000_000  # indexes up to this size have every file's digest verified


# --- the unpickler ----------------------------------------------------------------------------

_ALLOWED_MODULES = (
    "whoosh.fields",
    "whoosh.formats",
    "whoosh.columns",
    "whoosh.codec.whoosh3",
    "whoosh.analysis.",
    "whoosh.scoring",
)
_ALLOWED = {
    ("builtins", n)
    for n in ("int", "float", "str", "bytes", "bool", "set", "frozenset", "list", "dict", "tuple")
} | {
    ("collections", "defaultdict"),
    ("_codecs", "encode"),
    ("re", "_compile"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("array", "array"),
    ("array", "_array_reconstructor"),
    ("llmref.index", "LlmrefTokenizer"),
    ("llmref.index", "LlmrefText"),
}


class UnsafeIndex(Exception):
    """An index file asked to load something an index of ours never contains."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol 2 writes Python 2 names
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        allowed = (module, name) in _ALLOWED
        if not allowed and any(
            module == m or (m.endswith(".") and module.startswith(m)) for m in _ALLOWED_MODULES
        ):
            allowed = isinstance(getattr(importlib.import_module(module), name, None), type)
        if not allowed:
            raise UnsafeIndex(f"index data refers to {module}.{name}")
        return super().find_class(module, name)


def _safe_loads(data: bytes, **_kw):
    return _SafeUnpickler(io.BytesIO(data)).load()


def _safe_load(file, **_kw):
    return _SafeUnpickler(file).load()


def _harden_whoosh() -> None:
    """Route every unpickling in Whoosh's modules through ``_SafeUnpickler``."""
    shim = types.SimpleNamespace(
        loads=_safe_loads,
        load=_safe_load,
        dumps=pickle.dumps,
        dump=pickle.dump,
        HIGHEST_PROTOCOL=pickle.HIGHEST_PROTOCOL,
    )
    for name, module in list(sys.modules.items()):
        if not name.startswith("whoosh") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is pickle.loads:
                setattr(module, attr, _safe_loads)
            elif value is pickle.load:
                setattr(module, attr, _safe_load)
            elif value is pickle:
                setattr(module, attr, shim)


_harden_whoosh()


def _read_lengths_at_once() -> None:
    """Whoosh reads a document's field length with a seek and a one-byte read each time
    (writing a segment does it for every posting: a tenth of a build); read each field's
    length column once per segment instead. Same values, same ``None`` for a 0 byte."""
    from whoosh.codec import whoosh3
    from whoosh.util.numeric import byte_to_length

    def doc_field_length(self, docnum, fieldname, default=0):
        if docnum > self._doccount:
            raise IndexError(f"Asked for docnum {docnum!r} of {self._doccount}")
        cache = self.__dict__.setdefault("_llmref_lengths", {})
        if fieldname not in cache:
            cache[fieldname] = length_column(self, fieldname)
        raw = cache[fieldname]
        if raw is None:
            return default
        lbyte = raw[docnum] if docnum < len(raw) else 0
        if lbyte:
            return byte_to_length(lbyte)
        return None

    doc_field_length.whoosh = whoosh3.W3PerDocReader.doc_field_length  # type: ignore[attr-defined]
    whoosh3.W3PerDocReader.doc_field_length = doc_field_length


def length_column(perdoc, fieldname: str) -> bytes | None:
    """The byte-quantized lengths of one field, every document of a segment as stored (a
    segment's per-document reader; None when the field has no length column)."""
    from whoosh.codec import whoosh3

    column = perdoc._cached_reader(whoosh3._lenfield(fieldname), whoosh3.LENGTHS_COLUMN)
    if column is None:
        return None
    return bytes(column._dbfile.get(column._basepos, column._count))


_read_lengths_at_once()


BLOCK_POSTINGS = 512  # postings per block of a Whoosh posting list


def _pickle_blocks_with_protocol_4() -> None:
    """Whoosh 2.7 pickles posting blocks with protocol 2, where every ``bytes`` value (a
    posting's positions) becomes a ``_codecs.encode`` call: a 128-posting block of a
    positioned field takes ~150 us to load. Protocol 4 writes them as raw bytes: 10x faster
    to load, 7x to write, a third of the size. Loads read any protocol (SCHEMA_VERSION 9)."""
    from whoosh.codec import whoosh3

    def dumps(obj, protocol=2):
        return pickle.dumps(obj, 4)

    dumps.whoosh = whoosh3.dumps  # type: ignore[attr-defined]
    whoosh3.dumps = dumps

    # a block's id deltas and weights as arrays: one bytes payload each instead of 128
    # pickled numbers, read by bulk.py without a copy; Whoosh's matchers index them the same
    writer = whoosh3.W3PostingsWriter
    mini_ids, mini_weights = writer._mini_ids, writer._mini_weights

    def _mini_ids(self):
        got = mini_ids(self)
        return got if self._byteids else array("I", got)

    def _mini_weights(self):
        got = mini_weights(self)
        return array("d", got) if isinstance(got, tuple) else got

    writer._mini_ids, writer._mini_weights = _mini_ids, _mini_weights

    # 512 postings a block, not 128: a block costs ~25 us to read whatever its size (header,
    # zlib, unpickling), so a 70k-posting list reads in 4 ms instead of 12; Whoosh's matchers
    # read the block a skip lands in (phrase checks: a few blocks per candidate)
    init = whoosh3.W3Codec.__init__
    assert init.__defaults__ == (128, 3, 1), init.__defaults__  # blocklimit, compression, inline
    init.__defaults__ = (BLOCK_POSTINGS, 3, 1)


_pickle_blocks_with_protocol_4()


def _lean_segment_writing() -> None:
    """Whoosh's PostingPool.add and W3PostingsWriter.add_posting assert the types of every
    posting a build writes (millions, a few % of a build): the same without the asserts (the
    postings are ours: ``LlmrefText.index`` and Whoosh's own fields give bytes)."""
    from whoosh.writing import PostingPool

    def add(self, item):
        # item = (fieldname, tbytes, docnum, weight, vbytes): Whoosh's estimate of its size
        value = item[4]
        self.currentsize += 150 + len(item[0]) + 2 * len(item[1]) + (len(value) if value else 0)
        if self.currentsize > self.limit:
            self.save()
        self.current.append(item)
        self.fieldnames.add(item[0])

    add.whoosh = PostingPool.add  # type: ignore[attr-defined]
    PostingPool.add = add

    # the same for the codec's per-posting add (four type asserts a posting)
    from whoosh.codec.whoosh3 import W3PostingsWriter

    def add_posting(self, id_, weight, vbytes, length=None):
        if len(self._ids) >= self._blocklimit:
            self._write_block()
        self._ids.append(id_)
        self._weights.append(weight)
        if weight > self._maxweight:
            self._maxweight = weight
        if vbytes:
            self._values.append(vbytes)
        if length:
            if self._minlength is None or length < self._minlength:
                self._minlength = length
            if length > self._maxlength:
                self._maxlength = length

    add_posting.whoosh = W3PostingsWriter.add_posting  # type: ignore[attr-defined]
    W3PostingsWriter.add_posting = add_posting

    # and the loop that writes a segment's sorted postings (FieldWriter.add_postings): the
    # same calls, without re-checking the pool's order and with each field's lengths read
    # once into a table (a call per posting otherwise)
    from whoosh.codec.whoosh3 import W3FieldWriter

    def add_postings(self, schema, lengths, items):
        lastfn = None
        lasttext = None
        add = None
        table: list = []
        size = 0
        for fieldname, btext, docnum, weight, value in items:
            if fieldname != lastfn:
                if lasttext is not None:
                    self.finish_term()
                if lastfn is not None:
                    self.finish_field()
                self.start_field(fieldname, schema[fieldname])
                add = self._postwriter.add_posting
                table = _length_table(lengths, fieldname)
                size = len(table)
                lastfn = fieldname
                lasttext = None
            if docnum == -1:  # Whoosh's marker of spelling words: not postings
                continue
            if btext != lasttext:
                if lasttext is not None:
                    self.finish_term()
                self.start_term(btext)
                lasttext = btext
            add(
                docnum,
                weight,
                b"" if value is None else value,
                table[docnum] if docnum < size else None,
            )
        if lasttext is not None:
            self.finish_term()
        if lastfn is not None:
            self.finish_field()

    add_postings.whoosh = W3FieldWriter.add_postings  # type: ignore[attr-defined]
    W3FieldWriter.add_postings = add_postings


def _length_table(lengths, fieldname: str) -> list:
    """Every document's length of one field, as ``doc_field_length`` gives it (None for a
    zero byte, 0 without a length column)."""
    from whoosh.util.numeric import byte_to_length

    if lengths is None:
        return []
    raw = length_column(lengths, fieldname)
    if raw is None:
        return [0] * lengths._doccount
    values = [None] + [byte_to_length(b) for b in range(1, 256)]
    table = [values[b] for b in raw]
    return table + [None] * max(lengths._doccount - len(table), 0)


_lean_segment_writing()
# the external sort reads back only the runs this very writer just wrote to its private
# temporary files: it keeps the fast loader (it unpickles once per posting)
whoosh.externalsort.load = pickle.load


# --- schema -----------------------------------------------------------------------------------


class LlmrefTokenizer(Tokenizer):
    """Whoosh adapter for normalize.tokens: the one normalization of index and queries."""

    def __call__(  # type: ignore[override]
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            t.original = t.text = value
            t.boost = 1.0
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar, t.endchar = start_char, start_char + len(value)
            yield t
            return
        for tok in normalize.tokens(value, subwords=True):
            t.text = tok.text
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = tok.text
            if positions:
                t.pos = start_pos + tok.pos
            if chars:
                t.startchar, t.endchar = start_char + tok.start, start_char + tok.end
            yield t


class LlmrefText(TEXT):
    """A TEXT field that indexes ``normalize.tokens`` directly: the same terms, frequencies,
    weights and positions as Whoosh's analyzer pipeline (``Frequency`` / ``Positions``
    ``word_values``), without a Token object per word (a build spends a fifth of its time
    there). Queries still go through the analyzer."""

    def index(self, value, **kwargs):
        fmt = self.format
        if not isinstance(value, str) or type(fmt) not in (formats.Positions, formats.Frequency):
            yield from super().index(value, **kwargs)
            return
        fb = fmt.field_boost
        if type(fmt) is formats.Positions:
            poses: dict[str, list[int]] = {}
            for text, pos, _s, _e in normalize.token_tuples(value, subwords=True):
                got = poses.get(text)
                if got is None:
                    poses[text] = [pos]
                else:
                    got.append(pos)
            for word, found in poses.items():
                yield word.encode("utf-8"), len(found), float(len(found)) * fb, fmt.encode(found)
        else:
            freqs: dict[str, int] = {}
            for text, _p, _s, _e in normalize.token_tuples(value, subwords=True):
                freqs[text] = freqs.get(text, 0) + 1
            for word, freq in freqs.items():
                yield word.encode("utf-8"), freq, float(freq) * fb, pack_uint(freq)


def make_schema() -> Schema:
    analyzer = LlmrefTokenizer()
    return Schema(
        id=ID(unique=True, sortable=True),  # a column: hits are read without stored fields
        file=ID(),  # the note file (absolute path): one file's entries are replaced together
        question=LlmrefText(analyzer=analyzer, phrase=True),
        names=LlmrefText(analyzer=analyzer, phrase=True),
        concepts=KEYWORD(scorable=True),  # named by the question
        answer_concepts=KEYWORD(scorable=True),  # named by the answer only
        # no positions: the biggest field costs a third less to index; phrases of answers are
        # matched as all-of (see _to_whoosh)
        answer=LlmrefText(analyzer=analyzer, phrase=False),
    )


def document(entry: Entry, names: str) -> dict[str, str]:
    """The Whoosh document of an entry (``names``: its question's concepts' names)."""
    return {
        "id": entry.id,
        "file": entry.path,
        "question": entry.question,
        "names": names,
        "concepts": " ".join(entry.question_concepts),
        "answer_concepts": " ".join(c for c in entry.concepts if c not in entry.question_concepts),
        "answer": "\n".join(x for x in (entry.detail, entry.answer) if x),
    }


@dataclass(frozen=True)
class Clause:
    """One part of a query: terms of a field, combined as any / all / phrase, boosted."""

    field: str
    terms: tuple[str, ...]
    mode: str = "any"  # any | all | phrase | max (the best of ``alternatives`` counts)
    boost: float = 1.0
    slop: int = 1
    alternatives: tuple[Clause, ...] = ()  # mode "max": the ways to write one query word
    # mode "max": the alternatives are only those the engine holds (the planner drops the
    # others where it knows the index; an engine it does not know, team.TeamIndex, drops them)
    prune: bool = False


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    # (field, term) pairs of the query that this document holds (when asked for)
    terms: frozenset[tuple[str, str]] = frozenset()


# --- the manifest -------------------------------------------------------------------------------


def _files(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for child in path.iterdir():
        if child.name == MANIFEST or child.name.endswith(".lock"):
            continue
        out[child.name] = child.stat().st_size
    return out


def _toc(path: Path) -> str:
    tocs = sorted(
        (p for p in path.iterdir() if p.name.startswith("_MAIN_") and p.suffix == ".toc"),
        key=lambda p: int(p.stem.rsplit("_", 1)[-1]),
    )
    if not tocs:
        raise ValueError("no table of contents")
    return tocs[-1].name


def write_manifest(path: Path, key: bytes) -> None:
    """Record (and sign) the index as it is now: call after every commit, under the lock."""
    toc = _toc(path)
    files = _files(path)
    body = {
        "schema": SCHEMA_VERSION,
        "toc": toc,
        "toc_sha256": hashlib.sha256((path / toc).read_bytes()).hexdigest(),
        "files": files,
    }
    if sum(files.values()) <= HASH_ALL_BYTES:  # small: every byte is checked at open
        body["sha256"] = {name: _sha256(path / name) for name in sorted(files)}
    data = json.dumps(body, sort_keys=True).encode()
    manifest = {"body": body, "signature": cache.sign(key, data)}
    tmp = path / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(tmp, path / MANIFEST)


def verify_manifest(path: Path, key: bytes) -> None:
    """Raise ValueError unless the folder is exactly what we signed."""
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    body = manifest["body"]
    data = json.dumps(body, sort_keys=True).encode()
    if not cache.verify(key, data, manifest.get("signature", "")):
        raise ValueError("the index manifest is not signed by this install")
    if body.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"index schema {body.get('schema')!r}, expected {SCHEMA_VERSION}")
    files = _files(path)
    if files != body["files"]:
        changed = sorted(set(files.items()) ^ set(body["files"].items()))[:3]
        raise ValueError(f"index files differ from the manifest ({changed})")
    toc = path / body["toc"]
    if hashlib.sha256(toc.read_bytes()).hexdigest() != body["toc_sha256"]:
        raise ValueError("the index table of contents differs from the manifest")
    for name, digest in body.get("sha256", {}).items():
        if _sha256(path / name) != digest:
            raise ValueError(f"index file {name} differs from the manifest")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --- the index ----------------------------------------------------------------------------------


class SearchIndex:
    """One Whoosh folder: searching, and writers for build.py."""

    def __init__(self, path: Path, ix: whoosh.index.Index) -> None:
        self.path = path
        self._ix = ix
        self._searcher = None
        self._ids = None
        self._bulk = None  # bulk.BulkScorer of the open searcher (big indexes)
        self._df: dict[tuple[str, str], int] = {}  # document frequencies of the open searcher

    @classmethod
    def create(cls, path: Path) -> SearchIndex:
        path.mkdir(mode=0o700, parents=False, exist_ok=True)
        storage = _Storage(str(path))
        return cls(path, storage.create_index(make_schema()))

    @classmethod
    def open(cls, path: Path, key: bytes) -> SearchIndex:
        """Open a folder we built (manifest verified first)."""
        verify_manifest(path, key)
        storage = _Storage(str(path))
        ix = storage.open_index()
        index = cls(path, ix)
        index._get_searcher()  # open every segment now, while the files are the signed ones
        return index

    def doc_count(self) -> int:
        """Documents in the index, from the open searcher (the files may be rebuilt)."""
        return int(self._get_searcher().reader().doc_count())

    def writer(self, *, limitmb: int = 128):
        """A Whoosh writer (the caller holds the index lock)."""
        return self._ix.writer(timeout=30.0, limitmb=limitmb)

    def sign(self, key: bytes) -> None:
        write_manifest(self.path, key)

    # --- querying ---------------------------------------------------------------------------

    def _get_searcher(self):
        if self._searcher is None:
            self._searcher = self._ix.searcher(weighting=BM25F())
            try:
                self._ids = self._searcher.reader().column_reader("id")
            except NotImplementedError:  # an empty index has no columns
                self._ids = None
        return self._searcher

    def search(
        self, clauses: Sequence[Clause], limit: int = 10, *, terms: bool = False
    ) -> list[Hit]:
        """Ranked hits for the disjunction of the clauses (scores add up); ``terms``: with
        the query terms each hit holds.

        Big indexes (BULK_MIN_DOCS and more): Whoosh's matchers walk most of the index for a
        query with words many documents hold ("模型", "model", a generic concept); there the
        plan is scored term at a time from bulk-read postings (bulk.py)."""
        searcher = self._get_searcher()
        ids = self._ids
        if ids is None:
            return []
        if searcher.reader().doc_count_all() >= BULK_MIN_DOCS:
            if self._bulk is None:
                self._bulk = BulkScorer(searcher)
            return [
                Hit(_ident(ids, d), score, matched)
                for d, score, matched in self._bulk.search(
                    compile_plan(clauses), limit, terms=terms
                )
            ]
        parts = [q for q in (_to_whoosh(c) for c in clauses) if q is not None]
        if not parts:
            return []
        results = searcher.search(wq.Or(parts), limit=limit, terms=terms)
        return [
            Hit(_ident(ids, hit.docnum), float(hit.score), _matched(hit) if terms else frozenset())
            for hit in results
        ]

    def doc_frequency(self, field: str, term: str) -> int:
        """How many documents hold ``term`` in ``field`` (0 for an unknown term)."""
        key = (field, term)
        got = self._df.get(key)
        if got is None:
            if len(self._df) > 100_000:
                self._df.clear()
            got = self._df[key] = int(self._get_searcher().reader().doc_frequency(field, term))
        return got

    def vocabulary(self, fields: Iterable[str] = ("question", "names", "answer")) -> set[str]:
        """All indexed terms of the fields (small indexes only: the store keeps a vocabulary)."""
        reader = self._get_searcher().reader()
        words: set[str] = set()
        for name in fields:
            for term in reader.lexicon(name):
                words.add(term.decode("utf-8") if isinstance(term, bytes) else term)
        return words

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
            self._ids = None
            self._bulk = None
            self._df.clear()
        self._ix.close()


IN_MEMORY_BYTES = 16 << 20  # an open index reads segment files up to this size in all into memory


class _Storage(FileStorage):
    """Whoosh's file storage, no mmap (a file truncated under us is an error, not SIGBUS),
    with segment files read whole into memory when opened, up to ``IN_MEMORY_BYTES`` per
    open index (the bundled corpus's is 1.3 MB): Whoosh then reads them as buffers, without
    a seek and a read call per term lookup (a quarter of a bundled-corpus search)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, supports_mmap=False)
        self._in_memory = 0

    def open_file(self, name, **kwargs):
        if name.endswith(".seg"):
            with open(self._fpath(name), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if self._in_memory + size <= IN_MEMORY_BYTES:
                    data = f.read()
                    self._in_memory += len(data)
                    return BufferFile(memoryview(data), name=name, **kwargs)
        return super().open_file(name, **kwargs)


def _matched(hit) -> frozenset[tuple[str, str]]:
    return frozenset(_text_terms(hit.matched_terms()))


UNPOSITIONED = frozenset({"answer"})  # fields indexed without positions (no phrase queries)
BULK_MIN_DOCS = 500  # from this many documents, queries are scored term at a time (bulk.py)


def _ident(ids, docnum: int) -> str:
    ident = ids[docnum]
    return ident.decode("utf-8") if isinstance(ident, bytes) else ident


def _text_terms(pairs) -> Iterable[tuple[str, str]]:
    for name, text in pairs or ():
        yield name, text.decode("utf-8") if isinstance(text, bytes) else text


CONCEPT_FIELDS = frozenset({"concepts", "answer_concepts"})  # keywords: no phrases


def match_mode(clause: Clause) -> tuple[str, list[str]] | None:
    """How a (non-max) clause matches on every engine: ``("any" | "all" | "phrase", words)``
    (any/all: each word once; a phrase keeps its order and repeats), None without words.
    One word, a concept field or mode any is any-of; an unpositioned field's phrase is
    all-of."""
    terms = [t for t in clause.terms if t]
    if not terms:
        return None
    if clause.field in CONCEPT_FIELDS or len(terms) == 1 or clause.mode == "any":
        return "any", list(dict.fromkeys(terms))
    if clause.mode == "all" or clause.field in UNPOSITIONED:
        return "all", list(dict.fromkeys(terms))
    return "phrase", terms


def _to_whoosh(clause: Clause) -> wq.Query | None:
    if clause.mode == "max":
        subs = [q for q in (_to_whoosh(a) for a in clause.alternatives) if q is not None]
        if not subs:
            return None
        best: wq.Query = subs[0] if len(subs) == 1 else wq.DisjunctionMax(subs)
        best.boost = clause.boost
        return best
    how = match_mode(clause)
    if how is None:
        return None
    mode, words = how
    if mode == "any":
        subs = [wq.Term(clause.field, t) for t in words]
        q: wq.Query = subs[0] if len(subs) == 1 else wq.Or(subs)
    elif mode == "all":
        q = wq.And([wq.Term(clause.field, t) for t in words])
    else:
        q = wq.Phrase(clause.field, words, slop=clause.slop)
    q.boost = clause.boost
    return q


__all__ = [
    "Clause",
    "Hit",
    "SCHEMA_VERSION",
    "SearchIndex",
    "UnsafeIndex",
    "document",
    "make_schema",
    "verify_manifest",
    "write_manifest",
]
