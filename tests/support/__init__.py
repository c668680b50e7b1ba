"""What the tests and the scripts share: paths, tools a test needs, image files, the live
server, drawn digits and numbers, the table of bad requests.

Tests import it as `support` (pytest puts tests/ on the path); scripts, run from the
repository root as `python -m scripts.NAME`, import it as `tests.support`.
"""

import importlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
MODEL_PATH = ROOT / "model" / "model.onnx"
READER_PATH = ROOT / "model" / "number.onnx"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason, in_ci=IN_CI):
    """This test cannot run here: skipped on a developer machine, a failure in CI."""
    import pytest

    if in_ci:
        pytest.fail(f"{reason} (CI must run every test)", pytrace=False)
    pytest.skip(reason)


def require(module, in_ci=IN_CI):
    """Import `module` for a test that needs it; if it is not installed, the test is unavailable
    (a failure `in_ci`)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        unavailable(f"{module} cannot be imported ({error}); `make test` installs what the tests "
                    "need", in_ci)
