"""``llmref``: search / show / list / index (and ``serve``, the language server)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
import unicodedata
from collections.abc import Sequence

from . import __version__
from .corpus.entry import result_json

log = logging.getLogger("llmref")


def _setup_logging(verbose: int) -> None:
    # stderr only: stdout is for results (and, under `serve`, the LSP channel)
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("llmref: %(levelname)s: %(message)s"))
    # the level is the handler's too: `serve` lowers the llmref logger to INFO for the
    # editor's log (window/logMessage), and those records must not reach stderr as well
    # (VS Code shows both in one output channel: every line twice)
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    # libraries' debug output (markdown-it logs every block rule it tries) is not ours
    for name in ("markdown_it", "whoosh"):
        logging.getLogger(name).setLevel(logging.INFO)


def _warn(message: str) -> None:
    print(f"llmref: warning: {message}", file=sys.stderr)


class _ProgressBar:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")


def _settings(args: argparse.Namespace):
    from .config import load_settings

    return load_settings(
        args.corpus, bundled=not args.no_bundled, database=getattr(args, "database", None)
    )


def _open(args: argparse.Namespace, *, rebuild: bool = False, label: str = "indexing"):
    from .lookup import Reference

    settings = _settings(args)
    bar = _ProgressBar(label)
    try:
        ref = Reference.open(settings, rebuild=rebuild, progress=bar, waiting=_warn)
    finally:
        bar.close()
    for problem in ref.problems:  # one line each, naming the file (and line)
        _warn(str(problem))
    return ref


def _excerpt(markdown: str, width: int = 100) -> str:
    from .corpus.clean import excerpt

    return excerpt(_formulas(markdown), width)


def _clip(text: str, width: int = 60) -> str:
    """``text`` on one line, cut to about ``width`` columns (CJK counts double) with "…": a
    query is echoed back, never pasted back in full."""
    text = " ".join(text.split())
    out: list[str] = []
    used = 0
    for ch in text:
        used += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if used > width - 1:
            return "".join(out).rstrip() + "…"
        out.append(ch)
    return text


def _quoted(text: str) -> str:
    return f"'{_clip(text)}'"


# the formulas of an answer, as the cards find them: $$…$$ and $…$ holding some LaTeX
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(?!\s)([^$]{1,4000}?)\$", re.S)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>$])")


def _formulas(markdown: str) -> str:
    """LaTeX formulas -> readable Unicode (the cards' ``latex_to_text``); "$5 and $10" stays."""
    from .cards import latex_to_text

    def render(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        if not re.search(r"[\\^_{}]", body):
            return m.group(0)
        return re.sub(r"\n{3,}", "\n\n", latex_to_text(body))

    return _MATH.sub(render, markdown)


def _readable(markdown: str) -> str:
    """Answer markdown as a terminal shows it well: formulas as Unicode, markdown escapes
    (``\\_``, ``\\*``) dropped; fenced code exactly as written."""
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(_MD_ESCAPE.sub(r"\1", _formulas("\n".join(prose))))
            prose.clear()

    in_fence = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            flush()
            in_fence = not in_fence
            out.append(line)
        elif in_fence:
            out.append(line)
        else:
            prose.append(line)
    flush()
    return "\n".join(out)


def cmd_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query).strip()
    if not query:
        print(
            "llmref: the query is empty: search for words, identifiers or Chinese terms",
            file=sys.stderr,
        )
        return 2
    ref = _open(args)
    result = ref.search(query, limit=args.limit)
    if result.degraded:  # the index broke while answering: rebuild it, then answer
        _warn(f"the index is damaged ({result.degraded}); rebuilding it")
        bar = _ProgressBar("rebuilding")
        try:
            ref.rebuild(progress=bar)
        finally:
            bar.close()
        result = ref.search(query, limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {**result_json(r.entry, r.score), "coverage": round(r.coverage, 3)}
                    for r in result.results
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        if result.corrected:
            print(
                f"llmref: no results for {_quoted(query)}; these are for "
                f"{_quoted(result.suggestion or '')}",
                file=sys.stderr,
            )
        elif result.suggestion:
            print(f"llmref: did you mean {_quoted(result.suggestion)}?", file=sys.stderr)
        return 0 if result.results else 1
    if result.corrected:
        print(
            f"No results for {_quoted(query)}; showing results for {_quoted(result.suggestion or '')}."
        )
    elif result.suggestion:
        print(f"Did you mean {_quoted(result.suggestion)}?")
    if not result.results:
        print(f"No results for {_quoted(query)}.")
        return 1
    if not result.confident:
        print("No question in the corpus closely matches; the nearest ones:")
    for n, r in enumerate(result.results, 1):
        e = r.entry
        print(f"{n:>2}. {e.question}")
        where = f"{e.source}:{e.line}"
        if e.also_in:
            others = ref.also_in(e)
            listed = ", ".join(f"{o.source}:{o.line}" for o in others[:3])
            if len(others) > 3:
                listed += f" and {len(others) - 3} more"
            where += f"  (also in {listed})"
        print(f"    {where}  [{e.id}]")
        if e.external:
            print("    (the answer is external: " + _excerpt(e.answer, 200) + ")")
        elif not e.has_answer:
            print("    (no answer text in the source)")
        else:
            print(f"    {_excerpt(e.answer)}")
    shown = len(result.results)
    if shown < args.limit and sys.stdout.isatty():
        # say why there are fewer than asked: nothing else matches (see --help)
        print(
            f"\n{shown} result{'s' if shown != 1 else ''} of the {args.limit} asked for: "
            "no other question matches the query."
        )
    return 0


def _team_entries(ref, ids: list[str]) -> dict:
    """Entries by id, local or (``team:`` ids) from the team database."""
    found = ref.store.entries(ids)
    rest = [i for i in ids if i not in found]
    if rest and ref.team is not None:
        from .team.client import LONG_TIMEOUT_MS

        found.update(ref.team.entries(rest, LONG_TIMEOUT_MS))
    return found


def cmd_show(args: argparse.Namespace) -> int:
    ref = _open(args)
    ids = ref.find_ids(args.id, limit=10_000)
    if ref.team is not None and len(ids) != 1:
        from .team.client import LONG_TIMEOUT_MS

        ids += [i for i in ref.team.find_ids(args.id, 10_000, LONG_TIMEOUT_MS) if i not in ids]
    if not ids:
        print(f"llmref: no entry with id {_quoted(args.id)} (see `llmref list`)", file=sys.stderr)
        return 1
    if len(ids) > 1:
        print(
            f"llmref: {_quoted(args.id)} is ambiguous: it matches {len(ids)} entries; give one of their ids:",
            file=sys.stderr,
        )
        found = _team_entries(ref, ids[:20])
        for i in ids[:20]:
            if i not in found:
                continue
            e = found[i]
            print(f"  {e.id}  {e.source}:{e.line}  {_clip(e.question, 50)}", file=sys.stderr)
        if len(ids) > 20:
            print(f"  … and {len(ids) - 20} more", file=sys.stderr)
        return 2
    entry = _team_entries(ref, ids[:1]).get(ids[0])
    if entry is None:
        print(f"llmref: {_quoted(args.id)} could not be read (see the warnings)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result_json(entry), ensure_ascii=False, indent=2))
        return 0
    text = (lambda markdown: markdown) if args.raw else _readable
    print(f"# {entry.question}\n")
    print(f"{entry.source}:{entry.line}-{entry.end_line}  [{entry.id}]")
    if entry.section:
        print(f"Section: {entry.section}")
    if entry.concepts:
        names = [ref.glossary.get(c).name for c in entry.concepts[:8] if ref.glossary.get(c)]
        print("Concepts: " + ", ".join(names))
    if entry.also_in:
        others = ref.also_in(entry)
        print("Also in: " + ", ".join(f"{o.source}:{o.line}" for o in others))
    print()
    if entry.detail:
        print(text(entry.detail) + "\n")
    if entry.external:
        print("The answer is external:")
    if entry.answer:
        print(text(entry.answer))
    else:
        print("(no answer text in the source)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import itertools

    ref = _open(args)
    entries = ref.iter_entries()
    if ref.team is not None:  # then the team corpus's, a page at a time
        entries = itertools.chain(entries, ref.team.iter_entries())
    if args.json:
        print(json.dumps([result_json(e) for e in entries], ensure_ascii=False, indent=2))
        return 0
    for e in entries:
        print(f"{e.id}\t{e.source}:{e.line}\t{e.question}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    ref = _open(args, rebuild=args.rebuild)
    files = ref.store.file_count()
    report = ref.report
    state = "built" if ref.built else "updated" if report is not None else "up to date"
    print(
        f"Index {state}: {len(ref)} entries from {files} files, {len(ref.glossary)} concepts "
        f"({time.perf_counter() - started:.2f}s)\n{ref.index.path.parent}"
    )
    return 0


def _database(args: argparse.Namespace) -> str | None:
    settings = _settings(args)
    for problem in settings.problems:
        _warn(str(problem))
    if not settings.database:
        print(
            "llmref: no team database: give --database URL (or set LLMREF_DATABASE, or "
            "`database:` in the config file)",
            file=sys.stderr,
        )
        return None
    return settings.database


def cmd_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .team.db import TeamError
    from .team.publish import publish

    url = _database(args)
    if url is None:
        return 2
    settings = _settings(args)
    bar = _ProgressBar("publishing")
    try:
        report = publish(
            [Path(p).expanduser() for p in args.notes],
            url,
            rules=settings.rules(),
            dry_run=args.dry_run,
            workers=args.workers,
            progress=bar,
        )
    except TeamError as exc:
        bar.close()
        print(f"llmref: {exc}", file=sys.stderr)
        return 2
    bar.close()
    for problem in report.problems:
        _warn(str(problem))
    if args.dry_run:
        for action, path in report.plan:
            print(f"{action:<7} {path}")
        print(
            f"Would publish {report.added + report.changed} files ({report.added} new, "
            f"{report.changed} changed) and remove {report.removed}; {report.unchanged} "
            "unchanged. Nothing was written."
        )
        return 0
    print(
        f"Published {report.entries} entries from {report.added + report.changed} files "
        f"({report.added} new, {report.changed} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged) in {report.seconds:.1f}s"
    )
    return 0


def cmd_db_init(args: argparse.Namespace) -> int:
    import os

    from .team.db import TeamError, init_db

    url = _database(args)
    if url is None:
        return 2
    try:
        done = init_db(
            url,
            reader_password=os.environ.get("LLMREF_READER_PASSWORD") or None,
            writer_password=os.environ.get("LLMREF_WRITER_PASSWORD") or None,
        )
    except TeamError as exc:
        print(f"llmref: {exc}", file=sys.stderr)
        return 2
    for line in done:
        print(line)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .lsp.server import run
    except ImportError as exc:  # pragma: no cover - arrives with the language server
        print(f"llmref: the language server is not available: {exc}", file=sys.stderr)
        return 2
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="an extra folder (or file) of notes to search too; repeatable "
        "(also: LLMREF_CORPUS, and `corpus:` in the config file)",
    )
    common.add_argument("--no-bundled", action="store_true", help="leave out the bundled corpus")
    common.add_argument(
        "--database",
        metavar="URL",
        help="the team corpus's PostgreSQL database, searched too (a llmref_reader URL; also: "
        "LLMREF_DATABASE, and `database:` in the config file)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (stderr)")

    parser = argparse.ArgumentParser(
        prog="llmref",
        description="An offline LLM reference desk: search a bilingual Q&A corpus.",
    )
    parser.add_argument("--version", action="version", version=f"llmref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "search",
        parents=[common],
        help="search the corpus",
        description="Search the corpus: the best-matching questions, each with its source "
        "file:line, its id (for `llmref show`) and the start of its answer.",
    )
    p.add_argument("query", nargs="+", help="words, identifiers or Chinese terms")
    p.add_argument(
        "--limit",
        "-n",
        type=int,
        default=5,
        metavar="N",
        help="at most N results (default 5); fewer when fewer questions match the query "
        "(a question found in several sources counts once, with 'also in')",
    )
    p.add_argument("--json", action="store_true", help="print the results as a JSON list")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "show",
        parents=[common],
        help="one entry in full",
        description="One entry in full: question, source, concepts and the whole answer "
        "(formulas as readable Unicode).",
    )
    p.add_argument(
        "id",
        help="an entry id as `search` and `list` print it, the start of one, or its hash part "
        "(5f1901f5 for llm-interview-104-questions:5f1901f5)",
    )
    p.add_argument("--json", action="store_true", help="print the entry as a JSON object")
    p.add_argument(
        "--raw", action="store_true", help="print the answer's markdown as in the source"
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "list",
        parents=[common],
        help="all entries",
        description="Every entry: id, source file:line and question, one per line.",
    )
    p.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("index", parents=[common], help="build the index (if needed)")
    p.add_argument("--rebuild", action="store_true", help="build even if up to date")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "publish",
        parents=[common],
        help="publish note folders to the team database",
        description="Parse, tag and write note folders (or files) to the team database, "
        "incrementally: changed files are replaced, files gone from a published folder are "
        "removed, one transaction per batch (an interrupted publish leaves the previous state "
        "searchable and resumes). Needs a role that may write (llmref_writer).",
    )
    p.add_argument("notes", nargs="+", metavar="NOTES", help="a folder (or file) of notes")
    p.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    p.add_argument("--workers", type=int, metavar="N", help="parsing processes (default: by size)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("db", help="the team database")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    p = dbsub.add_parser(
        "init",
        parents=[common],
        help="create (or upgrade) the llmref schema and roles",
        description="Create the llmref schema (versioned; an older one is upgraded) and the "
        "roles llmref_reader (SELECT only) and llmref_writer (publishes). Run it as the "
        "database owner or an admin. Passwords for the roles are taken from "
        "LLMREF_READER_PASSWORD and LLMREF_WRITER_PASSWORD when set (sent as SCRAM "
        "verifiers, never in clear).",
    )
    p.set_defaults(func=cmd_db_init)

    p = sub.add_parser("serve", parents=[common], help="run the language server")
    p.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address instead")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    if getattr(args, "limit", 1) < 1:
        print("llmref: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the disk, the cache, permissions: say what, not a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"llmref: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
