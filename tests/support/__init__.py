"""Helpers shared by the test suites (cluster harness, simulated node)."""
