"""The layering can be drawn as a line: hw <- verif <- sim <- entry points (sim.cli, scripts).

Read from the sources' import statements (no import is executed), so a new cycle fails here
with the file and the import that makes it.
"""

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Each layer may import itself and the layers before it.
LAYERS = ["hw", "verif", "sim", "scripts"]
# Entry points: the command line lives in sim/ but sits above the library, beside scripts/.
ENTRY_POINTS = {"sim/cli.py"}


def _imports(path):
    """(line, top-level project package or None, imported module) for every import in ``path``."""
    package = path.relative_to(REPO).parent.parts
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = [".".join(base + ((node.module,) if node.module else ()))]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "scoville":
                parts = parts[1:]
            if parts and parts[0] in LAYERS:
                yield node.lineno, parts[0], ".".join(parts)


def _sources():
    for layer in LAYERS:
        yield from sorted((REPO / layer).rglob("*.py"))


def test_no_generic_top_level_imports():
    """Inside the project, imports name the installed package (``scoville.hw...``) or are relative."""
    bad = []
    for path in list(_sources()) + sorted((REPO / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                head = node.module.split(".")[0]
            elif isinstance(node, ast.Import):
                head = node.names[0].name.split(".")[0]
            else:
                continue
            if head in LAYERS:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: import of {head!r} (use scoville.{head})")
    assert not bad, "\n".join(bad)


def test_layers_import_only_downwards():
    bad = []
    for path in _sources():
        rel = str(path.relative_to(REPO))
        layer = rel.split("/")[0]
        allowed = set(LAYERS[:LAYERS.index(layer) + 1])
        for line, target, module in _imports(path):
            if rel in ENTRY_POINTS:
                continue
            if target not in allowed:
                bad.append(f"{rel}:{line}: {layer} imports {module} ({target} is above {layer})")
            elif module == "sim.cli" and layer != "scripts":
                bad.append(f"{rel}:{line}: library code imports the command line (sim.cli)")
    assert not bad, "\n".join(bad)


def test_every_package_is_installed():
    """pyproject's explicit package list (the ``scoville.*`` mapping) misses no package folder."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"scoville." + ".".join(p.parent.relative_to(REPO).parts)
             for layer in LAYERS for p in (REPO / layer).rglob("__init__.py")}
    assert found <= listed, f"package folders missing from pyproject.toml's packages: {sorted(found - listed)}"
