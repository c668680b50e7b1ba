"""The layout docs/layout.md describes: the root holds the entry points, every other module is
in a package, and imports run one way, from the packages that read a drawing up to the app and
training, with no cycle anywhere."""

import pytest

from support import ROOT
from support.served_files import imported_names, module_files

ENTRY_POINTS = {"app.py", "train_mnist.py", "utils.py"}  # the card's top-level modules
MOST_OTHER_ROOT_MODULES = 6
# What each part may import of the project's own code (docs/layout.md); a part is a package
# or a root module.
MAY_IMPORT = {
    "drawing": set(),
    "utils.py": {"drawing"},
    "reading": {"drawing", "utils.py"},
    "corrections": set(),
    "server": set(),
    "app.py": {"drawing", "utils.py", "reading", "corrections", "server"},
    "predict.py": {"app.py", "drawing", "reading"},
    "gunicorn.conf.py": {"server"},
    "training": {"drawing", "utils.py", "reading", "corrections"},
    "train_mnist.py": {"drawing", "utils.py", "reading", "training"},
}


def project_modules():
    """Paths, from the root, of the project's own modules: the tests and scripts aside."""
    return sorted(path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*.py")
                  if path.relative_to(ROOT).parts[0] not in (".venv", "tests", "scripts", "build"))


def imports_of(module):
    """Paths of the project's modules that `module` (a path from the root) imports."""
    found = {file.relative_to(ROOT).as_posix() for name in imported_names(ROOT / module)
             for file in module_files(name)}
    return found - {module}


def part(module):
    """The package a module is in, or the module itself at the root."""
    return module.split("/")[0] if "/" in module else module


def test_the_root_holds_the_entry_points_and_few_other_modules():
    others = [module for module in project_modules() if "/" not in module
              and module not in ENTRY_POINTS]
    assert len(others) <= MOST_OTHER_ROOT_MODULES, f"modules at the root: {others}"
    packages = {part(module) for module in project_modules() if "/" in module}
    assert packages == {"drawing", "reading", "corrections", "server", "training"}, packages


@pytest.mark.parametrize("module", project_modules())
def test_a_module_imports_only_the_parts_below_its_own(module):
    allowed = MAY_IMPORT[part(module)] | {part(module)}
    imported = {part(found) for found in imports_of(module)}
    assert imported <= allowed, (f"{module} imports {sorted(imported - allowed)}, which "
                                 f"{part(module)} may not (docs/layout.md)")


def test_no_module_imports_one_that_imports_it_back():
    graph = {module: imports_of(module) for module in project_modules()}
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
