"""The monitoring beside vLLM: the exporter, Prometheus, Alertmanager and Grafana, run natively or by
docker compose, with their configuration generated from observability/."""
