"""The user-facing contract: constants, spec and status models, the spec digest."""
