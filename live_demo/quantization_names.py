"""The weight format each quantization method stores, by method name (the common.formats vocabulary)."""

from __future__ import annotations


def weight_format(method: str) -> str:
    """The common.formats id of the weights a quantization method stores (e.g. int4-g32 -> "int4-g32").

    Raises ValueError for an unknown method (QuantMethod.from_name)."""
    from live_demo.quantization import QuantMethod

    return QuantMethod.from_name(method).weight_format
