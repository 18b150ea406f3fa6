"""A test-only Envoy RLS v3 service over Redis (server.py) and its hand-written wire format (rls.py)."""
