"""Values as they arrive from the page or the API, turned into what the project takes.

gr.Number converts its value before the event runs (`round(payload, 0)` for precision 0):
seed "abc" raises a TypeError there, NaN a ValueError, -inf an OverflowError, and Gradio
answers each with its message-less error; seed 1.5 is silently rounded to 2. `RawNumber`
is gr.Number with that conversion taken out, so every value reaches the project's checks,
which refuse it with a message. gr.Checkbox passes an API client's "false" through as a
non-empty string (true); `parse_bool` reads it as a person means it.
"""
from __future__ import annotations

import abc
import math

import gradio as gr

from .project import ProjectError


def _as_sent(self, payload):
    return payload


def _file_path(self, payload):
    """gr.File's preprocess without its file-type check, which refuses by the name's extension
    and leaves the refused upload in Gradio's cache: the event reads the header instead, and
    deletes the upload either way."""
    if payload is None:
        return None
    if isinstance(payload, list) or type(payload).__name__ == "ListFiles":
        payload = payload[0] if len(payload) else None
    path = getattr(payload, "path", None)
    return None if path is None else str(path)


def _unchecked_class(base: type) -> type:
    """`base` with its value reaching the event as sent (the event checks it).

    A subclass, since Gradio re-creates a component from its class when an event updates it
    (a per-session copy), so an instance attribute would be lost. Made with ABCMeta.__new__,
    skipping ComponentMeta.__new__: that one writes a .pyi stub beside the module of every
    component class at import time (the events are inherited, already wired on `base`).
    `is_template` makes the page draw it with `base`'s own front end."""
    if base not in _UNCHECKED:
        _UNCHECKED[base] = abc.ABCMeta.__new__(type(base), f"Unchecked{base.__name__}", (base,), {
            "__module__": __name__, "__doc__": base.__doc__, "is_template": True,
            "preprocess": _file_path if issubclass(base, gr.File) else _as_sent})
    return _UNCHECKED[base]


_UNCHECKED: dict[type, type] = {}


def unchecked(cls: type, *args, **kwargs):
    """A `cls` component (gr.Radio, gr.Number, ...) whose value reaches the event unconverted:
    gr.Number's conversion (`round(payload, 0)`) turned seed "abc", NaN and -inf into Gradio's
    message-less error and rounded 1.5 to 2; gr.Radio's check answers "Value: 'x' (type:
    <class 'str'>) is not in the list of choices", markup in a toast. The event checks the
    value instead and says what is wrong in a plain sentence."""
    return _unchecked_class(cls)(*args, **kwargs)


def RawNumber(*args, **kwargs) -> gr.Number:
    """gr.Number on the page; its value reaches the event unconverted (checked there)."""
    return unchecked(gr.Number, *args, **kwargs)


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
