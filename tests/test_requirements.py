"""The launch line installs requirements.txt alone, so every third-party package that the library,
the studio package or app.py imports must be named there (a missing PyAV once broke the launch line
while the test line, which also installs requirements-test.txt, stayed green)."""
import ast
import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"phenaki_core", "app"}
RUNTIME_SOURCES = [*sorted((ROOT / "phenaki_core").rglob("*.py")), *sorted((ROOT / "app").rglob("*.py")),
                   ROOT / "app.py"]


def top_level_imports(path: Path) -> set[str]:
    """Every absolute import in the module, lazy ones inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def required_distributions(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(canonicalize_name(Requirement(line).name))
    return names


def missing_requirements(sources, requirements: Path, root: Path = ROOT) -> dict[str, set[str]]:
    """{distribution: the files importing it} for each imported distribution requirements.txt lacks."""
    to_dists = importlib.metadata.packages_distributions()
    required = required_distributions(requirements)
    missing: dict[str, set[str]] = {}
    for path in sources:
        for name in top_level_imports(path) - LOCAL - set(sys.stdlib_module_names):
            # A module that is not installed cannot be mapped: report it under its own name.
            for dist in to_dists.get(name, [name]):
                if canonicalize_name(dist) not in required:
                    missing.setdefault(dist, set()).add(str(path.relative_to(root)))
    return missing


def test_every_runtime_import_is_in_requirements_txt():
    missing = missing_requirements(RUNTIME_SOURCES, ROOT / "requirements.txt")
    assert not missing, "requirements.txt lacks packages the launch line needs: " + "; ".join(
        f"{dist} (imported by {', '.join(sorted(files))})" for dist, files in sorted(missing.items()))


def test_the_check_names_a_missing_package(tmp_path):
    """The check itself can fail: a module importing PyAV against requirements without it."""
    module = tmp_path / "uses_av.py"
    module.write_text("import os\n\ndef f():\n    import av.container\n"
                      "    from numpy import zeros\n    from . import local\n")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\nnumpy>=1.26\n")
    missing = missing_requirements([module], reqs, root=tmp_path)
    assert set(missing) == {"av"}
    assert missing["av"] == {"uses_av.py"}
