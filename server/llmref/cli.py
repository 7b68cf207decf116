"""``llmref``: search / show / list / index (and ``serve``, the language server)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
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


def _open(args: argparse.Namespace, *, rebuild: bool = False, label: str = "indexing"):
    from .config import load_settings
    from .lookup import Reference

    settings = load_settings(args.corpus, bundled=not args.no_bundled)
    bar = _ProgressBar(label)
    try:
        ref = Reference.open(settings, rebuild=rebuild, progress=bar)
    finally:
        bar.close()
    for problem in ref.problems:  # one line each, naming the file (and line)
        _warn(str(problem))
    return ref


def _excerpt(markdown: str, width: int = 100) -> str:
    from .corpus.clean import excerpt

    return excerpt(markdown, width)


def cmd_search(args: argparse.Namespace) -> int:
    ref = _open(args)
    result = ref.search(" ".join(args.query), limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [result_json(r.entry, r.score) for r in result.results],
                ensure_ascii=False,
                indent=2,
            )
        )
        if result.suggestion:
            print(f"did you mean: {result.suggestion}", file=sys.stderr)
        return 0 if result.results else 1
    if result.corrected:
        print(f"No results for {result.query!r}; showing results for {result.suggestion!r}.")
    elif result.suggestion:
        print(f"Did you mean: {result.suggestion}?")
    if not result.results:
        print(f"No results for {result.query!r}.")
        return 1
    for n, r in enumerate(result.results, 1):
        e = r.entry
        print(f"{n:>2}. {e.question}")
        where = f"{e.source}:{e.line}"
        if e.also_in:
            others = [ref.entries[i] for i in e.also_in if i in ref.entries]
            where += "  (also in " + ", ".join(f"{o.source}:{o.line}" for o in others) + ")"
        print(f"    {where}  [{e.id}]")
        if e.external:
            print("    (the answer is external: " + _excerpt(e.answer, 200) + ")")
        elif not e.has_answer:
            print("    (no answer text in the source)")
        else:
            print(f"    {_excerpt(e.answer)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    ref = _open(args)
    entry = ref.get(args.id)
    if entry is None:
        print(f"llmref: no entry with id {args.id!r} (see `llmref list`)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result_json(entry), ensure_ascii=False, indent=2))
        return 0
    print(f"# {entry.question}\n")
    print(f"{entry.source}:{entry.line}-{entry.end_line}  [{entry.id}]")
    if entry.section:
        print(f"Section: {entry.section}")
    if entry.concepts:
        names = [ref.glossary.get(c).name for c in entry.concepts[:8] if ref.glossary.get(c)]
        print("Concepts: " + ", ".join(names))
    if entry.also_in:
        others = [ref.entries[i] for i in entry.also_in if i in ref.entries]
        print("Also in: " + ", ".join(f"{o.source}:{o.line}" for o in others))
    print()
    if entry.detail:
        print(entry.detail + "\n")
    if entry.external:
        print("The answer is external:")
    if entry.answer:
        print(entry.answer)
    else:
        print("(no answer text in the source)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ref = _open(args)
    entries = ref.all()
    if args.json:
        print(json.dumps([result_json(e) for e in entries], ensure_ascii=False, indent=2))
        return 0
    for e in entries:
        print(f"{e.id}\t{e.source}:{e.line}\t{e.question}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    ref = _open(args, rebuild=args.rebuild)
    files = len({e.source for e in ref.all()})
    state = "built" if ref.built else "up to date"
    print(
        f"Index {state}: {len(ref)} entries from {files} files, {len(ref.glossary)} concepts "
        f"({time.perf_counter() - started:.2f}s)\n{ref.index.path}"
    )
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
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (stderr)")

    parser = argparse.ArgumentParser(
        prog="llmref",
        description="An offline LLM reference desk: search a bilingual Q&A corpus.",
    )
    parser.add_argument("--version", action="version", version=f"llmref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("search", parents=[common], help="search the corpus")
    p.add_argument("query", nargs="+", help="words, identifiers or Chinese terms")
    p.add_argument("--limit", "-n", type=int, default=5, help="how many results (default 5)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("show", parents=[common], help="one entry in full")
    p.add_argument("id", help="an entry id (or a unique prefix of one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("list", parents=[common], help="all entries")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("index", parents=[common], help="build the index (if needed)")
    p.add_argument("--rebuild", action="store_true", help="build even if up to date")
    p.set_defaults(func=cmd_index)

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


if __name__ == "__main__":
    sys.exit(main())
