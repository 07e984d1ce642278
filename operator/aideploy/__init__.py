"""aideploy: a Kubernetes operator that puts AI model deployments under PROC-AI-DEPLOY-001."""

from importlib.metadata import version as _installed_version

# The version is pyproject.toml's, read from the installed package's metadata: one place to
# change it (a unit test keeps the chart's appVersion equal to it).
__version__ = _installed_version("aideploy")
