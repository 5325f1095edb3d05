"""The embeddable runtime: numpy and onnxruntime only (no lark, no networkx, no onnx)."""

from nngraph.runtime.bundle import Bundle, read_bundle, write_bundle
from nngraph.runtime.session import InputError, Session, available_devices


def load(model, device: str = "cpu", threads: int | None = None, **options) -> Session:
    """A Session on a compiled model or a bundle (``Session.bundle`` holds its metadata)."""
    return Session(model, device=device, threads=threads, **options)


__all__ = ["Session", "InputError", "available_devices", "Bundle", "read_bundle", "write_bundle", "load"]
