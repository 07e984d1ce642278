"""Pure decision logic: no I/O, no clocks (time is passed in), no Kubernetes client."""
