"""`serve-with-monitoring top`: a live terminal view of the supervised server, its GPUs and its alerts,
read from the launcher's state, vLLM's /metrics, the exporter's /metrics and Prometheus' alerts."""
