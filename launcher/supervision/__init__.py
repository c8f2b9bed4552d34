"""Generic supervision: children in process groups, probes, restarts with backoff, one stop algorithm,
systemd's notify protocol, the orphan guard. It knows nothing of vLLM."""
