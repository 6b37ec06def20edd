"""The shared tier's figures (`python -m bench.pool`, run by `make bench`): see bench/README.md."""
