"""Approval provenance: who really approved what (the admission webhook's policy, the
provenance annotations it stamps, and the configuration that maps roles to identities)."""
