"""The package's modules form layers: no import cycle, the CLI at the top, nothing imports it.

Every import of a specgenre module by another counts, at module level or inside a
function (a lazy import is still a dependency). With no cycle, the modules can be
ranked so that each imports only modules ranked below it: data flows one way.
"""

import ast
from pathlib import Path

import specgenre

PACKAGE = Path(specgenre.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """specgenre modules imported by the file at ``path`` (submodules resolved to modules)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("specgenre"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("specgenre"))
    return found


def _graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path) if d in modules and d != name}
        # a package's __init__ re-exports its submodules: importing the package is a
        # dependency on it, not a cycle through its own submodules
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cli_is_on_top_and_thin():
    graph = _graph()
    assert not [m for m, deps in graph.items() if "specgenre.cli" in deps]
    # its parser (file jobs' options included, 25 lines; reproduce's --memory-saving, 3)
    # and one short function per subcommand; the work is the library's
    lines = (PACKAGE / "cli.py").read_text().splitlines()
    assert len(lines) <= 485, f"cli.py has {len(lines)} lines"


def test_the_benchmarks_import_only_names_the_package_has():
    # benchmarks/ runs in no test; a name they import from specgenre, at module level
    # or inside a function, must still exist (bench_memory.py once imported CLI
    # internals that a refactoring had removed)
    import importlib

    scripts = sorted((PACKAGE.parents[1] / "benchmarks").glob("*.py"))
    if not scripts:
        import pytest

        pytest.skip("no benchmarks/ folder beside src/ (installed package)")
    missing = []
    for script in scripts:
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and (
                    node.module or "").split(".")[0] == "specgenre":
                module = importlib.import_module(node.module)
                missing += [f"{script.name}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name)]
    assert not missing, missing
