"""Kubernetes resource quantities ('500m', '0.5', '64Mi', 2), compared as numbers.

kubernetes.utils.quantity.parse_quantity is a pure function; this module is the core's
only import of the kubernetes package (allowed by name in the import contract).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity


def parse(value: Any) -> Decimal | None:
    """The quantity as a number, or None when it is not one."""
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, TypeError):
        return None


def same(a: Any, b: Any) -> bool:
    """'0.5' and '500m' are the same CPU; False when either is not a quantity."""
    x, y = parse(a), parse(b)
    return x is not None and x == y
