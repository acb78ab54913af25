"""The package's floors, read from the source with `ast` (imports inside functions and TYPE_CHECKING blocks count):
no import runs upward, no library module imports a command, and no two modules import each other, even indirectly."""
import ast
import graphlib
from pathlib import Path

import pytest

import sentibert

ROOT = Path(sentibert.__file__).parent

# (importer, imported) floors, by the first name under sentibert: what must never be imported from where.
UPWARD = {
    ("data", "parsing"),  # labelled text is parsed by a parser the caller passes in
    ("evaluation", "training"), ("parsing", "training"), ("inference", "training"),  # precision sits at the bottom
    ("runs", "evaluation"),
}
ENTRY = {"cli", "commands"}  # the command line: above everything, imported by nothing in the library
CAMPAIGN = "campaign"  # many runs and their tables: above training and evaluation, imported only by commands


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The sentibert modules that module `name` imports, anywhere in its source."""
    path, found = MODULES[name], set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package up
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from a import b` imports module a.b where b is one, else a name of module a
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports(name) for name in MODULES}


def floor(name: str) -> str:
    return name.split(".")[1] if "." in name else ""


def test_the_import_reader_sees_lazy_and_nested_imports():
    assert "sentibert.inference.predict" in GRAPH["sentibert"]  # inside __getattr__
    assert "sentibert.parsing.chart" in GRAPH["sentibert.parsing.parse"]  # inside a method
    assert "sentibert.precision" in GRAPH["sentibert.parsing.parse"]  # inside a function
    assert "sentibert.runs" in GRAPH["sentibert.training.loop"]  # `from sentibert import runs`: the module


def test_no_import_runs_upward():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets if (floor(a), floor(b)) in UPWARD)
    assert not upward


def test_only_commands_import_the_campaign():
    below = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                   if floor(b) == CAMPAIGN and floor(a) not in ENTRY | {CAMPAIGN})
    assert not below and any(floor(a) == CAMPAIGN for a in GRAPH)


def test_no_library_module_imports_a_command():
    library = [name for name in GRAPH if floor(name) not in ENTRY]
    assert library and not sorted(f"{a} -> {b}" for a in library for b in GRAPH[a] if floor(b) in ENTRY)


def test_no_import_cycle():
    # The root package is the public facade: it imports `load_model` lazily (on first use) and any module may read
    # its __version__, so it stands outside the graph.
    graph = {a: targets - {"sentibert"} for a, targets in GRAPH.items() if a != "sentibert"}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")
