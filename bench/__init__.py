"""Benchmarks (run as modules, e.g. `python -m bench.fakeaws_bench`)."""
