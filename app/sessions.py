"""The studio's live sessions: which Studio a page or an API client works on, and the
clean-up of session folders nobody has touched for a set time.

A browser tab finds its session through the id in its BrowserState (page load). An API
client runs no load event, so its first call makes its session; a client may send several
first calls at once, so making one is done under a lock keyed by the client's Gradio
session hash: they all land in one session. A client can also name a project by its id
(`open_project`) and reach it again after a restart.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .bounds import SESSION_MAX_AGE_DAYS
from .render import SESSION_RE, Studio, new_session_id, valid_session_id

log = logging.getLogger("phenaki.studio")
MAX_LIVE = 64  # sessions kept in memory; the rest wait on disk
CLEAN_EVERY_S = 3600


class Sessions:
    def __init__(self, pipe, projects_dir: Path, work_dir: Path, model: str,
                 max_age_s: float = SESSION_MAX_AGE_DAYS * 86400):
        self.pipe, self.projects_dir, self.work_dir, self.model = pipe, Path(projects_dir), Path(work_dir), model
        self.max_age_s = max_age_s
        self.live: OrderedDict[str, Studio] = OrderedDict()
        self.by_client: OrderedDict[str, Studio] = OrderedDict()  # Gradio session hash -> its Studio
        self.lock = threading.Lock()
        self._last_clean = 0.0
        self.clean()

    def _remember(self, st: Studio) -> Studio:
        self.live[st.id] = st
        self.live.move_to_end(st.id)
        while len(self.live) > MAX_LIVE:
            old_id, old = self.live.popitem(last=False)
            if old.rendering:  # never drop a session mid-render
                self.live[old_id] = old
                break
        return st

    def open(self, sid=None, client: str | None = None) -> Studio:
        """Session `sid` (live, or restored from its autosave), or a new one when sid is not an id."""
        with self.lock:
            if valid_session_id(sid):
                st = self.live.get(sid) or Studio.restore(self.pipe, sid, self.projects_dir, self.work_dir, self.model)
            else:
                st = Studio(self.pipe, new_session_id(), self.projects_dir, self.work_dir, self.model)
                if time.monotonic() - self._last_clean > CLEAN_EVERY_S:
                    self._clean_locked()
            if client is not None:
                self._bind(client, st)
            return self._remember(st)

    def _bind(self, client: str, st: Studio):
        self.by_client[client] = st
        self.by_client.move_to_end(client)
        while len(self.by_client) > 4 * MAX_LIVE:
            self.by_client.popitem(last=False)

    def ensure(self, st, client: str | None) -> Studio:
        """The Studio an event works on: the one in its gr.State, else the one this client's
        earlier (or concurrent) first call made, else a new one."""
        if isinstance(st, Studio):
            return st
        if client is None:
            return self.open(None)
        with self.lock:
            found = self.by_client.get(client)
        return found if found is not None else self._first(client)

    def _first(self, client: str) -> Studio:
        with self.lock:  # two first calls at once: the second finds the first's session
            found = self.by_client.get(client)
            if found is not None:
                return found
            st = Studio(self.pipe, new_session_id(), self.projects_dir, self.work_dir, self.model)
            self._bind(client, st)
            return self._remember(st)

    # -- clean-up ------------------------------------------------------------------------
    def clean(self, now: float | None = None) -> list[str]:
        with self.lock:
            return self._clean_locked(now)

    def _clean_locked(self, now: float | None = None) -> list[str]:
        """Delete session folders (autosaves and output files) untouched for max_age_s; never
        a live one. Returns the session ids removed."""
        self._last_clean = time.monotonic()
        now = time.time() if now is None else now
        removed = []
        for root in (self.projects_dir, self.work_dir):
            if not root.is_dir():
                continue
            for folder in root.iterdir():
                if not folder.is_dir() or not SESSION_RE.fullmatch(folder.name) or folder.name in self.live:
                    continue
                if now - _last_touched(folder) > self.max_age_s:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
        if removed:
            log.info("removed %d session folder(s) untouched for %.0f days", len(removed), self.max_age_s / 86400)
        return removed


def _last_touched(folder: Path) -> float:
    latest = 0.0
    with contextlib.suppress(OSError):
        latest = folder.stat().st_mtime
        for f in folder.rglob("*"):
            with contextlib.suppress(OSError):
                latest = max(latest, f.stat().st_mtime)
    return latest
