"""What the package and its tests import is declared in pyproject.toml; the version is
pyproject's, everywhere."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import aideploy
from tests.support.paths import CHART_DIR, PACKAGE_DIR, REPO_ROOT


def pyproject() -> dict[str, Any]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["dependencies"]]


def dev_requirements() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["dev"]]


def third_party_imports(root: Path) -> set[str]:
    modules: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return {
        m for m in modules if m not in sys.stdlib_module_names and m not in {"aideploy", "tests"}
    }


def undeclared(root: Path, declared: list[Requirement]) -> set[str]:
    names = {canonicalize_name(r.name) for r in declared}
    distributions = packages_distributions()
    return {
        module
        for module in third_party_imports(root)
        if not names & {canonicalize_name(d) for d in distributions.get(module, [])}
    }


# ---- declared ----------------------------------------------------------------------------


def test_every_third_party_package_the_operator_imports_is_a_runtime_dependency() -> None:
    assert third_party_imports(PACKAGE_DIR)  # the scan sees the package
    assert undeclared(PACKAGE_DIR, runtime_requirements()) == set()


def test_every_third_party_package_the_tests_import_is_declared() -> None:
    declared = runtime_requirements() + dev_requirements()
    assert undeclared(REPO_ROOT / "tests", declared) == set()


def test_the_kubernetes_client_is_bounded_to_a_major_whose_internals_are_used() -> None:
    """aideploy.kube.rest calls ApiClient.param_serialize / call_api: generated code, not a
    stable API, so the range is one tested major."""
    (kubernetes,) = [r for r in runtime_requirements() if r.name == "kubernetes"]
    upper = [s for s in kubernetes.specifier if s.operator == "<"]
    lower = [s for s in kubernetes.specifier if s.operator == ">="]
    assert upper and lower
    assert Version(upper[0].version).major - Version(lower[0].version).major == 1


# ---- one version -------------------------------------------------------------------------


def test_the_version_is_pyprojects_in_the_package_and_the_charts_app_version() -> None:
    version = pyproject()["project"]["version"]
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert aideploy.__version__ == version
    assert chart["appVersion"] == version
