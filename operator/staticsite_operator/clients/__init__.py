"""I/O: the only code that talks to the outside world.

`kube` is the one client of the Kubernetes API (kopf's watches aside), `gitremote`
reads git refs over smart HTTP for the reconcile, and `egress` decides which addresses
the operator may contact on a tenant's behalf.
"""
