"""The embeddable runtime: numpy and onnxruntime only (no lark, no networkx)."""

from nngraph.runtime.session import InputError, Session, available_devices

__all__ = ["Session", "InputError", "available_devices"]
