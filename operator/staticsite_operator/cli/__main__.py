"""`python -m staticsite_operator.cli`: the `staticsite` command."""

from .main import console

console()
