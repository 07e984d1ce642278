"""Where the tests find the repository's files: one root, named once."""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The repository's root: the design card's top level (operator/, crds/, charts/, ...).
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
PACKAGE_DIR: Final = REPO_ROOT / "operator" / "aideploy"
CRDS_DIR: Final = REPO_ROOT / "crds"
CHART_DIR: Final = REPO_ROOT / "charts" / "aideploy-operator"
EXAMPLES_DIR: Final = REPO_ROOT / "examples"
HACK_DIR: Final = REPO_ROOT / "hack"
ARGOCD_HEALTH_DIR: Final = (
    EXAMPLES_DIR / "argocd" / "resource_customizations" / "aideploy.io" / "AIDeployment"
)
