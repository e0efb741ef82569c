"""sgl-conveyor: tool partial execution for SGLang programs."""

__version__ = "0.1.0"
