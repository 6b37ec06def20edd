"""The chaos suite (`make chaos`): what production does to an operator, measured.

See __main__.py for the command line and docs/reliability.md for the scenarios and figures.
"""
