"""Hostile-input suite: one studio server for the whole suite (tiny pipeline, launched with
the studio's own launch_kwargs) and a count of the cases by kind
printed at the end of the run (`hostile cases by kind`).

Every case is marked `hostile(kind)`; the kinds follow the issue: memory (uploads and
exports within bounds), markup (plain-text messages), tabs (edits by stable id, per-tab
undo, one session per client), input (numbers, prompts, flags the API sends), restart
(project ids, clean-up, model warning, Host header), files (project files), serving.
"""
from __future__ import annotations

import collections
import os

import pytest
from studio_harness import serve

KINDS = ("memory", "markup", "tabs", "input", "restart", "files", "serving", "concurrency", "crash")


def pytest_configure(config):
    config.addinivalue_line("markers", "hostile(kind): a hostile-input case of the given kind (see tests/hostile)")


def _kind(item) -> str | None:
    m = item.get_closest_marker("hostile")
    return m.args[0] if m and m.args else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        k = _kind(item)
        if k is not None and k not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: unknown hostile kind {k!r}")


def pytest_terminal_summary(terminalreporter):
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for outcome in ("passed", "failed", "error", "skipped", "xfailed"):
        for rep in terminalreporter.stats.get(outcome, []):
            if getattr(rep, "when", "call") not in ("call", "setup") or rep.when == "setup" and outcome == "passed":
                continue
            kind = dict(getattr(rep, "user_properties", [])).get("hostile_kind")
            if kind:
                counts[kind][outcome] += 1
    if not counts:
        return
    terminalreporter.write_sep("-", "hostile cases by kind")
    total = collections.Counter()
    for kind in KINDS:
        if kind in counts:
            c = counts[kind]
            total.update(c)
            terminalreporter.write_line(f"{kind:12s} {sum(c.values()):4d}  " +
                                        ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    terminalreporter.write_line(f"{'total':12s} {sum(total.values()):4d}  " +
                                ", ".join(f"{k} {v}" for k, v in sorted(total.items())))


@pytest.fixture(autouse=True)
def _record_kind(request):
    k = _kind(request.node)
    if k:
        request.node.user_properties.append(("hostile_kind", k))


@pytest.fixture(scope="session")
def upload_dir(tmp_path_factory):
    """Gradio's upload cache for the suite's server, so a test can see what is left in it."""
    return tmp_path_factory.mktemp("gradio-cache")


@pytest.fixture(scope="session")
def studio(tiny_pipe, tmp_path_factory, upload_dir):
    """(url, root folder, demo): the studio as app.py launches it, on the tiny pipeline."""
    from app.bounds import launch_kwargs
    from app.ui import build_demo

    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir)
    root = tmp_path_factory.mktemp("hostile-studio")
    demo = build_demo(tiny_pipe, projects_dir=root / "projects", work_dir=root / "work", model="tiny")
    url = serve(demo, show_error=False, **launch_kwargs("127.0.0.1"))
    try:
        yield url, root, demo
    finally:
        demo.close()
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old


