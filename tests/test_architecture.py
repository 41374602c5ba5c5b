"""Import boundaries: pages use only the packages' public faces, packages do not knot together, no cycles.

Read from the source with `ast` (imports inside functions count too; imports under `if TYPE_CHECKING:` do not,
since they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("catalog", "recommender", "live_demo", "common")
PUBLIC_FACES = {"catalog", "catalog.api", "recommender", "recommender.api", "live_demo", "live_demo.api"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            out.add(prefix)
            for alias in node.names:   # `from pkg import module` imports a module too
                candidate = f"{prefix}.{alias.name}"
                if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists():
                    out.add(candidate)
    return out


def package_files(name: str) -> list[Path]:
    return sorted((ROOT / name).rglob("*.py"))


def test_pages_import_only_public_faces():
    offenders = {}
    for page in sorted((ROOT / "pages").glob("*.py")):
        bad = {m for m in imported_modules(page)
               if m.split(".")[0] in PACKAGES[:3] and m not in PUBLIC_FACES}
        if bad:
            offenders[page.name] = sorted(bad)
    assert not offenders, offenders


def test_recommender_and_live_demo_do_not_import_each_other():
    for a, b in (("recommender", "live_demo"), ("live_demo", "recommender"), ("catalog", "live_demo"),
                 ("catalog", "recommender")):
        leaks = {str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if m.split(".")[0] == b)
                 for f in package_files(a)}
        assert not any(leaks.values()), {k: v for k, v in leaks.items() if v}


def test_common_imports_none_of_the_three_packages():
    for f in package_files("common"):
        assert not {m for m in imported_modules(f) if m.split(".")[0] in PACKAGES[:3]}, f


def test_no_import_cycles_inside_the_packages():
    graph: dict[str, set[str]] = {}
    for name in PACKAGES:
        for f in package_files(name):
            mod = module_name(f)
            graph[mod] = {m for m in imported_modules(f) if m in _all_modules() and m != mod
                          and not mod.startswith(m + ".") and not m.startswith(mod + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def _all_modules() -> set[str]:
    return {module_name(f) for name in PACKAGES for f in package_files(name)}
