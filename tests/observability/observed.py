"""What a failing test's report shows the log tail of: (name, process) of the Envoys and Prometheus
servers running (see conftest.py)."""
RUNNING = []
