"""`make bench-serve`: real nginx with the rendered config against a hand-written baseline, per site shape."""
