"""The pure core: from a StaticSite and what the watches saw, to what should exist. No I/O.

Nothing here imports kopf, the kubernetes client or a network library (an import-linter
contract checks it). The reconcile pipeline (`reconcile`) reaches the cluster only
through two small interfaces it is given: a `View` of what the watches saw and a
`Client` that writes. Unit tests pass dicts and a recording fake for both.
"""
