"""Which top-level modules the serving image needs: the entry points it runs and every module of
the repository they import, directly or through each other, found by reading the imports."""

import ast

from . import ROOT

# gunicorn with its settings and the app factory (the Dockerfile's CMD), and the command-line
# reader, shipped for `docker run IMAGE python predict.py ...`.
ENTRY_POINTS = ("gunicorn.conf.py", "app.py", "predict.py")


def imported_modules(path):
    """Top-level names of the modules a file imports, at its top or inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def served_modules():
    """File names of the entry points and of the repository's modules they need."""
    found, pending = set(), list(ENTRY_POINTS)
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += [f"{module}.py" for module in imported_modules(ROOT / name)
                        if (ROOT / f"{module}.py").is_file()]
    return found
