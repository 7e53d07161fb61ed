"""The version of dsmini that wrote a file: checkpoints record it beside torch's (provenance)."""

__version__ = "0.1.0"
