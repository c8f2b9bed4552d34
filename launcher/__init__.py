"""serve-with-monitoring: supervise `vllm serve` with its monitoring stack."""

__version__ = "0.1.0"
