"""Reproducible benchmarks of staticsite-operator against its own local cluster (`make bench`)."""
