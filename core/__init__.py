"""gemmawatch: benchmark, safety and monitoring dashboard for Google's Gemma models."""

__version__ = "0.1.0"

__all__ = ["__version__"]
