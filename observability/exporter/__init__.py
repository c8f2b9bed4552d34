"""The GPU/host/supervisor exporter: collectors behind one interface, collected in the background."""
