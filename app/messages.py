"""Messages a person reads: plain text, no server path, no library internals.

Gradio renders an error toast as (sanitised) HTML: scripts go, but links and remote images
survive. So anything that may carry text from a user or a file is escaped here, once,
at the edge, and the rest of the studio writes plain sentences.
"""
from __future__ import annotations

import html
import re

MAX_MESSAGE_CHARS = 600
# An absolute path (POSIX or Windows) or a file: URL: the server's layout is not the user's business.
_PATH = re.compile(r"(?:file:/+|[A-Za-z]:\\|(?<![\w.])/)(?:[^\s'\"<>:]*/|[^\s'\"<>]*\\)+([^\s'\"<>/\\]*)")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


def plain(text) -> str:
    """`text` as a message safe to show: server paths cut to their last part, errno codes
    dropped, bounded in length, and HTML-escaped so a toast shows it as text."""
    text = str(text)
    text = _PATH.sub(lambda m: m.group(1) or "(a file)", text)
    text = _ERRNO.sub("", text)
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS - 1] + "…"
    return html.escape(text, quote=False)
