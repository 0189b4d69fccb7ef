"""Values as they arrive from the page or the API, turned into what the project takes.

gr.Number converts its value before the event runs (`round(payload, 0)` for precision 0):
seed "abc" raises a TypeError there, NaN a ValueError, -inf an OverflowError, and Gradio
answers each with its message-less error; seed 1.5 is silently rounded to 2. `RawNumber`
is gr.Number with that conversion taken out, so every value reaches the project's checks,
which refuse it with a message. gr.Checkbox passes an API client's "false" through as a
non-empty string (true); `parse_bool` reads it as a person means it.
"""
from __future__ import annotations

import math

import gradio as gr

from .project import ProjectError


def RawNumber(*args, **kwargs) -> gr.Number:  # noqa: N802 (used like the component it makes)
    """gr.Number on the page; its value reaches the event unconverted (checked there).

    An instance attribute, not a subclass: Gradio writes a .pyi stub beside every module that
    subclasses a component."""
    number = gr.Number(*args, **kwargs)
    number.preprocess = _unconverted
    return number


def _unconverted(payload):
    return payload


def parse_number(value, what: str):
    """A number from the page (int/float) or an API client (also numeric text); NaN and the
    infinities are refused here with a message, ranges by the project."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ProjectError(f"{what} must be a number, got {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProjectError(f"{what} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProjectError(f"{what} must be a finite number, got {value}")
    return value


def parse_bool(value, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return value.strip().lower() in ("true", "yes", "1", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ProjectError(f"{what} must be true or false, got {str(value)[:40]!r}")


def parse_choice(value, what: str, choices) -> str:
    if value not in choices:
        raise ProjectError(f"{what} must be one of {', '.join(choices)}, got {str(value)[:40]!r}")
    return value
