"""dsmini.export."""

from .transformers import architecture, export_checkpoint, export_zip_bytes, unsupported

__all__ = [
    "architecture",
    "export_checkpoint",
    "export_zip_bytes",
    "unsupported",
]
