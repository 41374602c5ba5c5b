"""Command line: python -m catalog search|show|export|coverage|build."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catalog.api import (
    STAGES,
    CatalogError,
    SearchIndex,
    UnknownTechniqueError,
    catalog_json,
    coverage,
    filter_techniques,
    load_catalog,
    techniques_bibtex,
    techniques_csv,
    to_bibtex,
)


def _cmd_search(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    hits = SearchIndex(catalog).search(args.query)
    kept = {t.id for t in filter_techniques([h.technique for h in hits], stages=args.stage,
                                            since_survey_only=args.since_survey)}
    shown = [h for h in hits if h.technique.id in kept][: args.limit]
    if args.json:
        print(json.dumps([{**h.technique.to_dict(), "score": h.score} for h in shown], indent=2, ensure_ascii=False))
    else:
        for hit in shown:
            print(f"{hit.technique.id:32} {hit.technique.name:36} {hit.technique.breadcrumb}")
    if hits.message:
        print(hits.message, file=sys.stderr)
    if not shown and not hits.no_close_match:
        print(f"no technique matches {args.query!r}", file=sys.stderr)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    technique = load_catalog().get(args.id)
    if args.json:
        print(json.dumps(technique.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"{technique.name}  [{technique.id}]{'  (added since the survey)' if technique.since_survey else ''}")
    print(technique.breadcrumb)
    print(f"{technique.year} · {technique.venue or technique.citation} · stages: {', '.join(technique.stages)} · "
          f"acts on: {', '.join(technique.acts_on)} · {technique.adoption_cost}")
    print()
    print(technique.summary)
    for result in technique.results:
        print(f"  - {result['metric']}: {result['value']} ({result['setting']})")
    if technique.libraries:
        print(f"Libraries: {', '.join(technique.libraries)}")
    for label, url in (("Paper", technique.paper_link), ("Code", technique.code_url)):
        if url:
            print(f"{label}: {url}")
    for engine, url in technique.engines.items():
        print(f"Engine {engine}: {url}")
    print()
    print(to_bibtex(technique.reference))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    techniques = filter_techniques(list(catalog.techniques), since_survey_only=args.since_survey)
    if args.format == "json":
        print(catalog_json(catalog, techniques))
    elif args.format == "csv":
        sys.stdout.write(techniques_csv(techniques))
    else:
        sys.stdout.write(techniques_bibtex(techniques))
    return 0


def _cmd_coverage(args: argparse.Namespace) -> int:
    result = coverage(load_catalog())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"maintained list (README commit {result.source_commit[:12]}): {len(result.matched)} of {result.total} "
          f"papers matched by an entry ({result.fraction:.1%})")
    if result.unmatched:
        print(f"\n{len(result.unmatched)} unmatched:")
        for paper in result.unmatched:
            print(f"  {paper.year or '----'}  {paper.title}  [{' > '.join(paper.sections[0][-2:])}]")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from catalog.build import write_references, write_table1

    survey = Path(args.survey)
    if not survey.is_file():
        raise FileNotFoundError(f"survey text not found at {survey}")
    text = survey.read_text(encoding="utf-8")
    print(f"wrote {write_references(text)} references and {write_table1(text)} Table 1 rows")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit code 2) instead of the usage block."""

    def error(self, message):
        raise UsageError(message)


class UsageError(ValueError):
    """Bad command-line arguments."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def one_line(message, limit: int = 400) -> str:
    """An error message as one printable line (no terminal escapes), cut to `limit` characters."""
    text = " ".join(str(message).split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m catalog", description="Browse the efficient-LLM catalog.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    search = sub.add_parser("search", help="full-text search, typo tolerant")
    search.add_argument("query")
    search.add_argument("--stage", action="append", choices=STAGES, help="keep techniques of this stage")
    search.add_argument("--since-survey", action="store_true", help="only techniques published after the survey")
    search.add_argument("--limit", type=_positive_int, default=20)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=_cmd_search)
    show = sub.add_parser("show", help="one technique by id")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_cmd_show)
    export = sub.add_parser("export", help="the whole catalog")
    export.add_argument("--format", choices=("json", "csv", "bibtex"), default="json")
    export.add_argument("--since-survey", action="store_true", help="only techniques published after the survey")
    export.set_defaults(func=_cmd_export)
    cover = sub.add_parser("coverage", help="how much of the survey's maintained paper list the catalog covers")
    cover.add_argument("--json", action="store_true")
    cover.set_defaults(func=_cmd_coverage)
    build = sub.add_parser("build", help="re-parse references and Table 1 from the survey text")
    build.add_argument("--survey", default=str(Path(__file__).resolve().parents[1].parent / "shared/seed/efficient_llms_survey.txt"))
    build.set_defaults(func=_cmd_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BrokenPipeError:   # e.g. piped into `head`: not an error of ours
        return 0
    except (UnknownTechniqueError, CatalogError, ValueError, OSError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
