"""Which files of the repository the serving image needs: the entry points it runs and every
module of the repository they import, directly or through each other, found by reading the
imports; a module inside a package brings its package's __init__.py."""

import ast

from . import ROOT

# gunicorn with its settings and the app factory (the Dockerfile's CMD), and the command-line
# reader, shipped for `docker run IMAGE python predict.py ...`.
ENTRY_POINTS = ("gunicorn.conf.py", "app.py", "predict.py")


def imported_names(path):
    """Dotted names a file imports, at its top or inside functions; for `from a import b`,
    both `a` and `a.b` (b may be a module or a name in a)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_files(name):
    """The repository's files that importing the dotted `name` runs (each package's
    __init__.py on the way, then the module), or [] if it is not the repository's."""
    files, parts = [], name.split(".")
    for depth in range(1, len(parts) + 1):
        path = ROOT.joinpath(*parts[:depth])
        if (path / "__init__.py").is_file():
            files.append(path / "__init__.py")
        elif path.with_suffix(".py").is_file():
            return files + [path.with_suffix(".py")]
        else:
            return files
    return files


def served_modules():
    """Paths, from the repository's root, of the entry points and of the repository's modules
    they need."""
    found, pending = set(), [ROOT / name for name in ENTRY_POINTS]
    while pending:
        path = pending.pop()
        name = path.relative_to(ROOT).as_posix()
        if name not in found:
            found.add(name)
            pending += [file for imported in imported_names(path)
                        for file in module_files(imported)]
    return found
