"""The thin Kubernetes I/O layer: reads, server-side applies, status writes, Events."""
