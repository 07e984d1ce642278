"""aideploy: a Kubernetes operator that puts AI model deployments under PROC-AI-DEPLOY-001."""

__version__ = "0.1.0"
