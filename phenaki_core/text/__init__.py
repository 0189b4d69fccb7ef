from .encoders import TextEncoder

__all__ = ["TextEncoder"]
