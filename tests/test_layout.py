"""The package's shape: no import cycles, schema constants defined once (in schema.py), no
private names used across modules. Read from the source with ``ast``: nothing is run."""

from __future__ import annotations

import ast
from pathlib import Path

from conduit_notebook import schema

PACKAGE = Path(__file__).resolve().parent.parent / "conduit_notebook"


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


def _imports(name: str, path: Path, tree: ast.Module, modules: set[str]) -> set[str]:
    """The package's modules this one imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            candidates = [f"{target}.{a.name}" for a in node.names] + [target]
            found.update(c for c in candidates if c in modules)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    found.discard(name)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_even_through_imports_inside_functions():
    modules = _modules()
    graph = {name: _imports(name, path, tree, set(modules)) for name, (path, tree) in modules.items()}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_schema_constants_are_defined_only_in_schema():
    statuses = set(schema.RUN_STATUSES) | set(schema.ESCALATION_STATUSES)
    found = []
    for name, (path, tree) in _modules().items():
        if name == "conduit_notebook.schema":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found += [f"{path.name}:{node.lineno} assigns {t.id}" for t in targets
                          if isinstance(t, ast.Name) and t.id in schema.__all__]
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if len(values) == len(node.elts) and set(values) <= statuses:
                    found.append(f"{path.name}:{node.lineno} spells out statuses {values}")
    assert not found, "schema constants outside schema.py:\n" + "\n".join(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_in(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, variables, attributes it sets, arguments."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _private_uses(name: str, path: Path, tree: ast.Module) -> list[str]:
    """Where a module imports another's private name, or uses a private attribute it does not
    define itself (``other_module._name``, ``frames._field``)."""
    defined = _defined_in(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if _private(a.name)]
            # A private module (demo/_data.py) is for its own package only.
            inner = (node.module or "").split(".")
            if any(_private(part) for part in inner[:-1]) or (_private(inner[-1]) and node.level > 1):
                found.append(f"{path.name}:{node.lineno} imports the private module {node.module} from outside its package")
        elif (isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in defined
              and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):  # its own, or a base's
            found.append(f"{path.name}:{node.lineno} uses {ast.unparse(node)}")
    return sorted(found, key=lambda use: int(use.split(":")[1].split()[0]))


def test_no_module_uses_another_modules_private_names():
    found = [use for name, (path, tree) in _modules().items() for use in _private_uses(name, path, tree)]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_the_private_name_check_finds_them():
    tree = ast.parse("from .cache import _newest_first\nfrom . import frames\nframes._trace_source\n"
                     "from ..demo._data import dumps\nself._own = 1\nself._own\n")
    uses = _private_uses("conduit_notebook.x.y", PACKAGE / "x" / "y.py", tree)
    assert uses == ["y.py:1 imports _newest_first", "y.py:3 uses frames._trace_source",
                    "y.py:4 imports the private module demo._data from outside its package"]


def _dollar_formats(tree: ast.Module) -> list[int]:
    """Lines that spell out a dollar format: "${:,.2f}", f"${value:,.2f}"."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "${" in node.value:
            lines.append(node.lineno)
        elif isinstance(node, ast.JoinedStr):
            parts = node.values
            lines += [node.lineno for a, b in zip(parts, parts[1:], strict=False)
                      if isinstance(a, ast.Constant) and str(a.value).endswith("$") and isinstance(b, ast.FormattedValue)]
    return lines


def test_dollars_are_formatted_in_one_place():
    found = [f"{path.name}:{line}" for name, (path, tree) in _modules().items()
             if name != "conduit_notebook.formatting" for line in _dollar_formats(tree)]
    assert not found, "dollar formats outside formatting.py: " + ", ".join(found)
    assert _dollar_formats(ast.parse('a = "${:,.2f}"\nb = f"${x:,.4f}"\n')) == [1, 2]


def test_widgets_and_plots_do_not_import_the_report():
    modules = _modules()
    for name in ("conduit_notebook.widgets", "conduit_notebook.plots"):
        path, tree = modules[name]
        assert "conduit_notebook.report" not in _imports(name, path, tree, set(modules)), name


#: The layers, lowest first (issue 20): records -> frames -> fetching -> summaries and statistics ->
#: plots, widgets, report and the command line. A module may import its own layer or one below,
#: never one above. A module a layer does not name fails the test: place it when you add it.
LAYERS = {
    "base": ["conduit_notebook", "schema", "errors", "times", "paths", "deprecation", "lookup", "columns", "formatting", "styling", "records",
             "pacing", "pace_file", "progress", "sampling", "checks", "metrics", "thread", "follow", "stats",
             "lake.layout", "lake.metrics_sql", "lake.views", "review.store", "widgets.common",
             "investigate.values"],
    "frames": ["frames", "storage", "export", "client", "wire", "retry", "cache", "cache_file", "cache_segments", "cache_claims",
               "cache_store"],
    "fetching": ["fetch_job", "fetch_frames", "fetch_more", "listing", "traces", "messages", "escalations", "runframes", "fetch", "lake", "demo"],
    "statistics": ["analysis", "tools", "investigate", "review", "ppi", "conversation_outcomes"],
    "display": ["plots", "widgets", "report", "report_page", "report_investigations", "accessor", "cli",
                "cli_parser", "__main__"],
}


def _layer(module: str) -> int:
    """The rank of ``module``'s layer: the longest name in LAYERS it is, or is inside."""
    name = module.removeprefix("conduit_notebook.") if module != "conduit_notebook" else module
    best = (-1, -1)
    for rank, names in enumerate(LAYERS.values()):
        for prefix in names:
            if name == prefix or name.startswith(prefix + "."):
                best = max(best, (len(prefix), rank))
    assert best[1] >= 0, f"{module} is in no layer of tests/test_layout.py's LAYERS: place it"
    return best[1]


def test_imports_flow_down_the_layers():
    modules = _modules()
    upward = [f"{name} ({list(LAYERS)[_layer(name)]}) imports {target} ({list(LAYERS)[_layer(target)]})"
              for name, (path, tree) in modules.items()
              for target in sorted(_imports(name, path, tree, set(modules)))
              if _layer(target) > _layer(name)]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_the_layer_check_finds_an_upward_import():
    assert _layer("conduit_notebook.frames") < _layer("conduit_notebook.plots.usage")
    assert _layer("conduit_notebook.lake.layout") < _layer("conduit_notebook.lake.write")
    assert _layer("conduit_notebook.review.store") < _layer("conduit_notebook.review.report")


#: Modules and functions over the size limits (issue 20: modules <= ~450 lines, function bodies
#: <= ~60), each with why. A new one fails the test; one that shrinks must leave the list.
LARGE: dict[str, str] = {}


def test_modules_and_functions_stay_small():
    over = []
    for path, tree in _modules().values():
        relative = path.relative_to(PACKAGE).as_posix()
        if len(path.read_text(encoding="utf-8").splitlines()) > 460 and relative not in LARGE:
            over.append(f"{relative}: {len(path.read_text(encoding='utf-8').splitlines())} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if (isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
                                         and isinstance(node.body[0].value.value, str)) else node.body
                length = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                if length > 62 and f"{relative}:{node.name}" not in LARGE:
                    over.append(f"{relative}:{node.lineno} {node.name}: {length} lines")
    assert not over, "over the size limits (issue 20):\n" + "\n".join(over)
    still = {key for key in LARGE if key.endswith(".py")}
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path, _tree in _modules().values()}
    assert not [key for key in still if sizes.get(key, 0) <= 460], "shrunk: take it off LARGE"
