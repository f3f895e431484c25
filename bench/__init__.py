"""``make bench``: the benchmark harness (see docs/benchmarks.md). Not part of the product."""
