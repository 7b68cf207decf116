"""How much of a notes folder's text ends up in entries (what search can find).

    python benchmarks/coverage.py FOLDER... [--worst N] [--json]

Each folder is read as llmref reads a corpus folder (the same discovery and decoding), every
file parsed with ``parse_markdown``. For every source line we count its *text*: the line's
non-whitespace characters after markup is taken away —

* not counted at all: a YAML/TOML front matter block at the top, blank lines, fence lines
  (```` ``` ````/``~~~`` with their info string), thematic breaks and setext underlines,
  table delimiter rows (``|---|:--:|``), HTML comments, link reference definitions;
* taken out of a line: heading ``#`` marks, list and quote markers, the emphasis/code marks
  ``*`` and `````, ``~~``, table pipes, backslash escapes, HTML tags (their text stays), link
  URLs and image URLs (a link counts its text, an image its alt text), ``<http://…>`` autolinks;
  character references (``&#x20;``, ``&amp;``) count as the character they stand for.

The same normalization is applied to every line of each entry's question, detail and answer.
A line's text is *held* when it is found in an entry whose source range [line, end_line]
contains the line (so the ranges must cover the file: text between two entries is a miss),
or, for a heading line, in the question of the first entry after it (a heading with no text
of its own lives in the heading path of its first subsection). A line found only in part (a
question without its "1." or "**提问**：" label) counts the longest part found at its end.
Code counts as text.

The report gives, per folder, the share held, the characters outside every entry's range
("between entries") and those inside a range but not in the entry's text ("in range, not in
text": cut or rewritten text), then the worst files with some of their missed lines.
"""

from __future__ import annotations

import argparse
import bisect
import html
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmref.corpus.entry import Entry
from llmref.corpus.loader import decode, discover
from llmref.corpus.parse import parse_markdown

_FRONT_OPEN = re.compile(r"^(---|\+\+\+)\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RULE = re.compile(r"^ {0,3}(?:(?:[-*_] *){3,}|=+ *)$")
_TABLE_DELIM = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S")
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)")
_IMAGE = re.compile(r"!\[([^\]\n]{0,1000})\]\([^)\n]{0,2000}\)")
_LINK = re.compile(r"\[([^\]\n]{0,1000})\]\([^)\n]{0,2000}\)")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>\s]*>")
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,2000}>")
_LEAD = re.compile(
    r"^\s*(?:>\s*)*(?:(?:[-*+]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s+)?)?(?:#{1,6}(?=\s|$))?"
)
_CLOSING_HASHES = re.compile(r"\s#+\s*$")
_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
_MARKS = re.compile(r"[*`|]|~~|\s")


def text_of(line: str) -> str:
    """The countable text of one markdown line (see the module docstring)."""
    line = _HTML_COMMENT.sub("", line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub("", line)
    line = html.unescape(_TAG.sub("", line))
    line = _LEAD.sub("", line, count=1)
    line = _CLOSING_HASHES.sub("", line)
    line = _ESCAPE.sub("", line)
    return _MARKS.sub("", line)


def front_matter_end(lines: list[str]) -> int:
    """Number of lines of a front matter block at the top (0 when there is none)."""
    if not lines or not _FRONT_OPEN.match(lines[0]):
        return 0
    close = {"---": ("---", "..."), "+++": ("+++",)}[lines[0].strip()]
    for i in range(1, len(lines)):
        if lines[i].strip() in close:
            return i + 1
    return 0


@dataclass
class Line:
    number: int  # 1-based
    text: str  # countable text
    heading: bool


def countable_lines(text: str, *, front_matter: bool = True) -> list[Line]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[Line] = []
    fence: str | None = None
    start = front_matter_end(lines) if front_matter else 0
    for i in range(start, len(lines)):
        raw = lines[i]
        m = _FENCE.match(raw)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                if not raw.strip().strip(fence[0]):
                    fence = None
                    continue
            if raw.strip():
                out.append(Line(i + 1, _MARKS.sub("", raw), False))
            continue
        if m:
            fence = m.group(1)
            continue
        if not raw.strip() or _RULE.match(raw) or _TABLE_DELIM.match(raw) or _REF_DEF.match(raw):
            continue
        heading = raw.lstrip(" ").startswith("#") or (
            i + 1 < len(lines) and re.match(r"^ {0,3}(=+|-+) *$", lines[i + 1]) is not None
        )
        t = text_of(raw)
        if t:
            out.append(Line(i + 1, t, heading))
    return out


def _haystack(*texts: str) -> str:
    return "".join(line.text for t in texts for line in countable_lines(t, front_matter=False))


def _held(needle: str, hays: list[str]) -> int:
    """Length of the longest end of ``needle`` found in one of ``hays``."""
    best = 0
    for hay in hays:
        if needle in hay:
            return len(needle)
        lo, hi = best, len(needle)  # a found end stays found when shortened: bisect
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if needle[len(needle) - mid :] in hay:
                lo = mid
            else:
                hi = mid - 1
        best = max(best, lo)
    return best


@dataclass
class FileResult:
    display: str
    total: int = 0
    held: int = 0
    between: int = 0  # outside every entry's range
    lost: int = 0  # inside a range, not in the entry's text
    entries: int = 0
    misses: list[tuple[int, str]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.held / self.total if self.total else 1.0


def measure_file(text: str, entries: list[Entry], display: str) -> FileResult:
    res = FileResult(display, entries=len(entries))
    entries = sorted(entries, key=lambda e: e.line)
    starts = [e.line for e in entries]
    hays = [_haystack(e.question, e.detail, e.answer) for e in entries]
    heads = [_haystack(e.question) for e in entries]
    covering: dict[int, list[int]] = {}
    for k, e in enumerate(entries):
        for n in range(e.line, e.end_line + 1):
            covering.setdefault(n, []).append(k)
    for line in countable_lines(text):
        need = len(line.text)
        res.total += need
        ks = covering.get(line.number, [])
        got = _held(line.text, [hays[k] for k in ks])
        if got < need and line.heading:
            nxt = bisect.bisect_right(starts, line.number)
            if nxt < len(entries):
                got = max(got, _held(line.text, [heads[nxt]]))
        res.held += got
        if got < need:
            if not ks:
                res.between += need - got
            else:
                res.lost += need - got
            if len(res.misses) < 5:
                res.misses.append((line.number, line.text[:60]))
    return res


def measure_folder(folder: Path) -> list[FileResult]:
    notes, _glossaries, problems = discover([(folder, "")])
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    out: list[FileResult] = []
    for path, display in notes:
        text, problem = decode(path.read_bytes(), path)
        if text is None:
            print(f"warning: {problem}", file=sys.stderr)
            continue
        out.append(measure_file(text, parse_markdown(text, display, str(path)), display))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--worst", type=int, default=5, help="worst files shown per folder")
    ap.add_argument("--min", type=float, default=None, help="exit 1 below this share (0-1)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    report = []
    ok = True
    for folder in args.folders:
        t0 = time.perf_counter()
        files = measure_folder(folder)
        secs = time.perf_counter() - t0
        total = sum(f.total for f in files)
        held = sum(f.held for f in files)
        share = held / total if total else 1.0
        ok = ok and (args.min is None or share >= args.min)
        row = {
            "folder": str(folder),
            "files": len(files),
            "entries": sum(f.entries for f in files),
            "chars": total,
            "held": held,
            "share": round(share, 4),
            "between_entries": sum(f.between for f in files),
            "in_range_not_in_text": sum(f.lost for f in files),
            "seconds": round(secs, 2),
            "worst": [
                {
                    "file": f.display,
                    "share": round(f.share, 4),
                    "missed": f.total - f.held,
                    "misses": f.misses,
                }
                for f in sorted(files, key=lambda f: (f.held - f.total, f.share))[: args.worst]
                if f.held < f.total
            ],
        }
        report.append(row)
        if args.json:
            continue
        print(
            f"{folder}: {share:.1%} of {total:,} characters held by {row['entries']:,} "
            f"entries of {len(files)} files ({secs:.1f} s)"
        )
        print(
            f"  between entries: {row['between_entries']:,}   "
            f"in range, not in text: {row['in_range_not_in_text']:,}"
        )
        for w in row["worst"]:
            print(f"  {w['share']:6.1%}  {w['missed']:>6,} missed  {w['file']}")
            for number, text in w["misses"][:3]:
                print(f"           {number:>5}: {text}")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
