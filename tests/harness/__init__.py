"""Test harness: a real Envoy with the filter, an echo backend, and an independent request signer."""
