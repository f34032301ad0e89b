"""Benchmarks: scripts that print measured figures (see benchmarks/README.md); nothing here is asserted."""
