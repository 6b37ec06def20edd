"""staticsite-operator: static website hosting on Kubernetes, reconciled by kopf."""

__version__ = "0.1.0"
