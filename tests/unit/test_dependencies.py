"""What the package and its tests import is declared in pyproject.toml; the lock files pin
every declaration at a version that satisfies it; the version is pyproject's, everywhere."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import aideploy
from tests.support.paths import CHART_DIR, PACKAGE_DIR, REPO_ROOT

RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"


def pyproject() -> dict[str, Any]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["dependencies"]]


def dev_requirements() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["dev"]]


def pins(lock: Path) -> dict[str, Version]:
    """name -> version of every `name==version` requirement line (hash lines continue it)."""
    found: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        if not line or line[0].isspace() or line.startswith(("#", "-")):
            continue
        requirement = Requirement(line.rstrip("\\ "))
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{lock.name}: {line!r} is no pin"
        found[canonicalize_name(requirement.name)] = Version(specifier.version)
    return found


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


# ---- locked ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (RUNTIME_LOCK, runtime_requirements),
        (DEV_LOCK, runtime_requirements),
        (DEV_LOCK, dev_requirements),
    ],
    ids=["runtime-in-runtime-lock", "runtime-in-dev-lock", "dev-in-dev-lock"],
)
def test_lock_pins_every_declared_dependency_within_its_range(
    lock: Path, requirements: Any
) -> None:
    pinned = pins(lock)
    for requirement in requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock.name} does not pin {requirement}: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock.name} pins {name}=={pinned[name]}, outside {requirement}: run `make lock`"
        )


def test_the_image_gets_the_versions_ci_tested() -> None:
    """The image installs requirements.lock, CI the dev lock: each runtime pin is the same."""
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_lock_has_hashes_and_names_no_index_or_local_path(lock: Path) -> None:
    """A fresh clone installs from the default index; nothing in it is this machine's."""
    text = lock.read_text()
    options = [line for line in text.splitlines() if line.startswith("-")]
    assert options == [], "index or find-links options in the lock: see `make lock`"
    assert "file://" not in text
    assert " /" not in text.replace(" \\", "")  # no absolute paths
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            assert line.endswith("\\"), f"{lock.name}: {line!r} has no hashes"


# ---- one version -------------------------------------------------------------------------


def test_the_version_is_pyprojects_in_the_package_and_the_charts_app_version() -> None:
    version = pyproject()["project"]["version"]
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert aideploy.__version__ == version
    assert chart["appVersion"] == version
