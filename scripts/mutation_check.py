"""Plant known bugs one at a time in a scratch copy of the tree and see which tests catch them.

Each mutant is a text patch on one file (an exact old snippet and its replacement), one per
important claim of the project. For each, the script copies the working tree once to a
scratch folder (tracked and untracked-but-not-ignored files: the tree as it is, uncommitted
edits included; the real tree is never touched), applies the patch there, runs the part of
the suite that should notice (`pytest -x`, or the whole suite with --full), reads pytest's
first failure and restores the file. A snippet that is no longer in its file (the code
moved) is reported as such, so the list can be brought up to date instead of passing
silently.

    python scripts/mutation_check.py                # every mutant, its own test subset
    python scripts/mutation_check.py --full         # every mutant against the whole suite
    python scripts/mutation_check.py atomic-write cancel-ignored   # some mutants only
    python scripts/mutation_check.py --list
    python scripts/mutation_check.py --report docs/mutation-report.md

Exit status: 0 when every mutant is caught, 1 when one survives or its snippet is missing.
Why not mutmut or cosmic-ray: they mutate operators at random across modules and would run
the suite thousands of times; on two cores the useful check is a short list of the bugs
that matter, each named for the claim it breaks.
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Mutant:
    name: str
    claim: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # what to run (pytest arguments: files, node ids, -k expressions)
    timeout: int | None = None  # seconds before it counts as timed out, when shorter than --timeout


ENGINE = "phenaki_core/story/engine.py"
TIMELINE = "phenaki_core/story/timeline.py"
PIPELINE = "phenaki_core/pipelines/pipeline_phenaki.py"
SCHEDULER = "phenaki_core/schedulers/scheduling_maskgit.py"
SIDECAR_TESTS = ("tests/test_io.py", "tests/test_story.py", "-k", "sidecar")

MUTANTS = [
    Mutant("atomic-write", "io writes go to a temporary file renamed into place",
           "phenaki_core/io.py",
           "        yield Path(tmp)\n        os.replace(tmp, path)\n",
           "        yield path  # straight to the target\n",
           ("tests/test_io.py", "-k", "atomic")),
    # The studio's render queue (concurrency_limit=1) used to be all that kept two renders from
    # corrupting each other's frames. Sampling state is now per call, so two renders at once are
    # correct and the queue is a throughput choice: these two plant the shared state back.
    Mutant("scheduler-state-shared", "two renders sharing one pipeline each get the frames they get alone "
           "(the scheduler's state is per call)",
           PIPELINE,
           "            tokens, state = self.scheduler.step(logits, i, tokens, generator, state=state, return_dict=False)\n",
           "            # the state on the shared scheduler, as it once was: later steps read whoever stepped last\n"
           "            tokens, self.scheduler.shared_state = self.scheduler.step(\n"
           "                logits, i, tokens, generator, state=self.scheduler.shared_state if i else state,\n"
           "                return_dict=False)\n",
           ("tests/test_mutation_guards.py", "tests/test_concurrent_sampling.py", "-k", "lockstep or solo_renders")),
    Mutant("interrupt-flag-shared", "cancelling one render leaves another on the same pipeline untouched "
           "(the interrupt flag is per call)",
           PIPELINE,
           "        self._per_call = threading.local()  # interrupt flag, step count: one per calling thread\n",
           "        self._per_call = type(\"Shared\", (), {})()  # one flag for every thread\n",
           ("tests/test_mutation_guards.py", "tests/test_concurrent_sampling.py", "-k", "cancel")),
    Mutant("revision-transformer-only", "pipe.revision covers every weight of every component",
           PIPELINE,
           "(self.text_encoder, self.vqvae, self.transformer))",
           "(self.transformer,))",
           ("tests/test_pipeline_io.py", "-k", "revision")),
    Mutant("revision-no-scheduler", "pipe.revision covers the scheduler's settings",
           PIPELINE,
           "return _weights_digest(json.dumps(settings, sort_keys=True).encode(),",
           "return _weights_digest(b'',",
           ("tests/test_pipeline_io.py", "-k", "revision")),
    Mutant("causal-mask-removed", "C-ViViT's temporal transformer is causal",
           "phenaki_core/models/cvivit.py",
           "self.enc_temporal = Transformer(width, temporal_depth, heads, causal=True)",
           "self.enc_temporal = Transformer(width, temporal_depth, heads, causal=False)",
           ("tests/test_models.py", "-k", "causal or prefix")),
    Mutant("decoder-causal-mask-removed", "C-ViViT's decoder is causal: frame t never depends on later tokens",
           "phenaki_core/models/cvivit.py",
           "self.dec_temporal = Transformer(width, temporal_depth, heads, causal=True)",
           "self.dec_temporal = Transformer(width, temporal_depth, heads, causal=False)",
           ("tests/test_models.py", "-k", "causal or prefix")),
    Mutant("frozen-prefix-overwritten", "a continuing clip keeps the re-encoded context tokens exactly",
           SCHEDULER,
           'unknown.sum(1),\n                                          torch.full(tokens.shape, float("inf"),',
           'unknown.sum(1),  # known tokens counted least likely: refinement redraws them\n'
           '                                          torch.full(tokens.shape, float("-inf"),',
           ("tests/test_sampling.py", "tests/test_story.py", "-k", "prefix or refinement or continuation")),
    Mutant("context-not-re-encoded", "the next clip's prefix is the C-ViViT tokens of the last K frames",
           PIPELINE,
           "            tokens[:, : prefix_tokens.shape[1]] = prefix_tokens.to(tokens.device)\n",
           "            pass  # the context is ignored\n",
           ("tests/test_story.py", "-k", "continu")),
    Mutant("context-window-grows", "every clip continues the last K frames, never the whole past",
           ENGINE,
           "        context, clip = tail[-k:], clip + 1",
           "        context, clip = tail[-(2 * k - 1):], clip + 1",
           ("tests/test_story.py", "-k", "long_segment")),
    Mutant("sidecar-seed-offset", "a sidecar re-renders the same frames bit for bit",
           TIMELINE,
           '            segments = [Segment(**s) for s in data["segments"]]',
           '            segments = [Segment(**{**s, "seed": s.get("seed", 0) + 1}) for s in data["segments"]]',
           SIDECAR_TESTS),
    Mutant("sidecar-start-frames-lossy", "a sidecar carries the frames a story started from exactly",
           "phenaki_core/io.py",
           '    Image.fromarray(frame).save(buffer, format="PNG")',
           '    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)',
           ("tests/test_io.py", "-k", "sidecar")),
    Mutant("sidecar-drops-guidance", "a sidecar carries every sampling setting",
           TIMELINE,
           'fields = {k: data[k] for k in ("num_inference_steps", "guidance_scale", "context_frames", "model",',
           'fields = {k: data[k] for k in ("num_inference_steps", "context_frames", "model",',
           SIDECAR_TESTS),
    Mutant("regenerate-recomputes-others", "regenerating segment k recomputes k alone",
           ENGINE,
           "        self.results[index] = render_segment(self.pipe, self.story, index, self._before(index), **hooks)\n",
           "        for j in range(index):\n"
           "            self.results[j] = render_segment(self.pipe, self.story, j, self._before(j), **hooks)\n"
           "        self.results[index] = render_segment(self.pipe, self.story, index, self._before(index), **hooks)\n",
           ("tests/test_story.py", "-k", "regenerating")),
    Mutant("stale-not-flowing", "segments after a regenerated one are marked stale",
           ENGINE,
           '            upstream = bool(flags) and flags[-1] and seg.transition == "continue"',
           "            upstream = False",
           ("tests/test_story.py", "-k", "regenerating")),
    Mutant("undo-broken", "undo restores the project as it was before the last action",
           "app/project.py",
           "        self._restore(self._undo.pop())",
           "        self._undo.pop()",
           ("tests/test_app_project.py", "-k", "undo")),
    Mutant("undo-crosses-tabs", "a tab's Undo undoes that tab's own last action, never another tab's",
           "app/project.py",
           "        if self.actor is not None and by is not None and by != self.actor:",
           "        if False:  # any tab undoes whatever came last",
           ("tests/hostile/test_hostile_tabs.py", "-k", "undo_undoes_the_asking_tabs_action")),
    Mutant("cancel-ignored-engine", "the story engine stops within a sampling step when asked",
           ENGINE,
           "        if should_cancel is not None and should_cancel():\n            p._interrupt = True\n",
           "        pass  # the stop flag is never read\n",
           ("tests/test_story.py", "-k", "cancel")),
    # Its only catcher is the API test, which waits 120 s for the render it failed to stop;
    # the run stops at that first failure instead of waiting for the render to end.
    Mutant("cancel-ignored-studio", "the studio's Cancel stops the render on the pipeline",
           "app/render.py",
           "res = r.render_segment(i, should_cancel=self.cancel.is_set, on_step=on_step)",
           "res = r.render_segment(i, should_cancel=None, on_step=on_step)",
           ("tests/test_app_api.py", "-k", "cancel"), timeout=400),
    Mutant("session-isolation", "each browser tab or API client gets its own project",
           "app/sessions.py",
           "            st = Studio(self.pipe, new_session_id(), self.projects_dir, self.work_dir, self.model)\n"
           "            self._bind(client, st)\n",
           "            st = next(reversed(self.live.values()), None) or Studio(  # a newcomer joins the last session\n"
           "                self.pipe, new_session_id(), self.projects_dir, self.work_dir, self.model)\n"
           "            self._bind(client, st)\n",
           ("tests/test_app_api.py", "-k", "sessions_are_separate")),
    Mutant("prompt-length-unbounded", "prompts longer than the limit are refused with a message",
           TIMELINE,
           "            if len(s.prompt) > MAX_PROMPT_CHARS:",
           "            if False:",
           ("tests/test_story.py", "tests/test_app_project.py", "-k", "bad")),
    Mutant("upload-size-unbounded", "an upload's pixel count is checked from its header before decoding",
           "app/bounds.py",
           "    if max(w, h) > max_side or (max_pixels is not None and w * h > max_pixels):",
           "    if False:",
           ("tests/hostile/test_hostile_uploads.py", "-k", "header_check")),
    Mutant("export-unbounded", "an export over the memory budget is refused before any copy",
           "app/bounds.py",
           "    if need <= EXPORT_BUDGET_BYTES:\n        return\n",
           "    return\n",
           ("tests/hostile/test_hostile_uploads.py", "-k", "export_over_budget")),
    Mutant("guidance-sign-flipped", "classifier-free guidance pushes towards the prompt",
           PIPELINE,
           "logits = null + scale * (cond - null)",
           "logits = null - scale * (cond - null)",
           ("tests/test_sampling.py", "-k", "guidance")),
    Mutant("refinement-off-by-one", "refinement re-masks floor(n * fraction * left / steps) tokens",
           SCHEDULER,
           "        left = self.config.refine_steps - (step - (state.num_inference_steps - 1))",
           "        left = self.config.refine_steps - (step - state.num_inference_steps)",
           ("tests/test_sampling.py", "-k", "refinement")),
    Mutant("export-drops-a-frame", "the exported video holds every frame of the story",
           "phenaki_core/io.py",
           "    frames = upscale(frames, size, resample)\n    path.parent.mkdir",
           "    frames = upscale(frames, size, resample)[:-1] if len(frames) > 1 else upscale(frames, size, resample)\n"
           "    path.parent.mkdir",
           ("tests/test_export.py",)),
    Mutant("segment-not-trimmed", "a segment lasts exactly the frames it asks for",
           ENGINE,
           "    return RenderedSegment(seg, fingerprint, np.concatenate(frames)[: seg.frames], tokens, skips)",
           "    return RenderedSegment(seg, fingerprint, np.concatenate(frames)[-seg.frames:], tokens, skips)",
           ("tests/test_story.py", "-k", "trimmed")),
    Mutant("redraw-context-miscounted", "a story drawn again from its tokens drops exactly each clip's context frames",
           ENGINE,
           "        skips.append(0 if context is None else len(context))\n",
           "        skips.append(0 if context is None else k)\n",
           ("tests/test_upsampler_wiring.py", "-k", "bit_for_bit")),
    Mutant("studio-retokenizes-its-takes", "the studio exports a take at a drawn size from the tokens it was sampled as",
           "app/render.py",
           "            frames = self.drawn_frames(len(self.project.items), size)\n",
           "            frames = self.pipe.redraw(frames, size, s.context_frames)\n",
           ("tests/test_studio_tokens.py", "-k", "bit_for_bit")),
    Mutant("redraw-without-lead-in", "a take without tokens is tokenized again after the frames it continued",
           PIPELINE,
           "            frames, lead = np.concatenate([context, frames]), len(context)\n",
           "            lead = 0\n",
           ("tests/test_studio_tokens.py", "-k", "without_tokens")),
    Mutant("init-frames-ignored", "a story started from an image continues that image",
           ENGINE,
           "        if need > 0 and self.init_frames is not None:",
           "        if False:",
           ("tests/test_story.py", "-k", "init")),
    # The held-out split alone (12 prompts, one batched call): the cheaper half of the floor.
    Mutant("quality-model-broken", "the shipped model follows its prompts",
           PIPELINE,
           "            states, mask = self.encode_prompt(prompts)\n            # Conditional",
           "            states, mask = self.encode_prompt(prompts)\n"
           "            states, mask = states.roll(1, 0), mask.roll(1, 0)  # each clip gets another clip's prompt\n"
           "            # Conditional",
           ("tests/test_quality_floor.py", "-k", "heldout"), timeout=400),
]


def tree_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True,
                         check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def scratch_copy(root: Path, dest: Path) -> Path:
    for f in tree_files(root):
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, target)
    return dest


# Test ids may hold spaces (parameters such as "png 1x60000 (312 bytes)").
FAILED = re.compile(r"^(FAILED|ERROR) (\S+::.*?)(?: - (.*))?$", re.MULTILINE)
FIRST_FAILURE = re.compile(r"^(\S+::.*) (FAILED|ERROR)(?: +\[ *\d+%\])?\s*$")  # pytest -v: a test's verdict is in
GRACE_S = 30  # after the first failure, how long the run may go on tearing down before it is stopped


def _pytest(cmd, tree: Path, env: dict, timeout: int) -> tuple[int | None, str, str | None]:
    """Run pytest; stop it GRACE_S after its first failure or at `timeout`, whichever comes first.

    Why stop early: a mutant that breaks a stop flag leaves a render running, and the
    fixtures' teardown waits for it (minutes), though the verdict came long before.
    Returns (exit status or None when stopped, output, the first failing test or None)."""
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, proc.stdout), lines.put(None)], daemon=True).start()
    out, first, deadline = [], None, time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            return proc.wait(), "".join(out), first
        out.append(line)
        hit = FIRST_FAILURE.match(line)
        if hit and first is None:
            first, deadline = hit.group(1), min(deadline, time.monotonic() + GRACE_S)
    os.killpg(proc.pid, signal.SIGKILL)  # the group this run started, and nothing else
    proc.wait()
    return None, "".join(out), first


def run_mutant(m: Mutant, tree: Path, full: bool, timeout: int) -> dict:
    path = tree / m.file
    if not path.is_file():
        return {"result": "file not found", "detail": m.file}
    original = path.read_text(encoding="utf-8")
    count = original.count(m.old)
    if count != 1:
        return {"result": "snippet not found" if count == 0 else f"snippet found {count} times", "detail": m.file}
    path.write_text(original.replace(m.old, m.new), encoding="utf-8")
    args = [] if full else list(m.tests)
    cmd = [sys.executable, "-m", "pytest", "-x", "-v", "-rfE", "-p", "no:cacheprovider", *args]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    timeout = min(timeout, m.timeout or timeout)
    start = time.monotonic()
    try:
        code, stdout, first = _pytest(cmd, tree, env, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    seconds = time.monotonic() - start
    if code is None:
        if first is None:
            return {"result": "timed out", "detail": f"no verdict within {timeout} s", "seconds": seconds}
        return {"result": "caught", "test": first, "seconds": seconds,
                "detail": f"stopped {GRACE_S} s after this first failure, still tearing down"}
    run = subprocess.CompletedProcess(cmd, code, stdout, "")
    found = FAILED.search(run.stdout)
    if run.returncode == 0:
        return {"result": "SURVIVED", "detail": run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "",
                "seconds": seconds}
    if found:
        return {"result": "caught", "test": found.group(2), "detail": (found.group(3) or "")[:160], "seconds": seconds}
    if run.returncode == 5:
        return {"result": "no tests ran", "detail": " ".join(args), "seconds": seconds}
    tail = (run.stdout + run.stderr).strip().splitlines()[-3:]
    return {"result": "caught", "test": "(collection or crash)", "detail": " | ".join(tail)[:160], "seconds": seconds}


def report_markdown(rows: list[tuple[Mutant, dict]], full: bool) -> str:
    lines = ["| mutant | claim it breaks | file | result | first failing test | wall s |", "|---|---|---|---|---|---|"]
    for m, r in rows:
        test = r.get("test", "") if r["result"] == "caught" else r.get("detail", "")
        seconds = f"{r['seconds']:.0f}" if "seconds" in r else ""
        lines.append(f"| `{m.name}` | {m.claim} | `{m.file}` | {r['result']} | {f'`{test}`' if test else ''} | {seconds} |")
    caught = sum(r["result"] == "caught" for _, r in rows)
    scope = "the whole suite" if full else "each mutant's own subset of the suite"
    return "\n".join([f"{caught} of {len(rows)} mutants caught, run against {scope} with `pytest -x`.", "",
                      *lines, ""])


START, END = "<!-- mutation results -->", "<!-- /mutation results -->"


def write_report(path: Path, table: str):
    """Replace the results between the markers of an existing report (its prose stays), or write the table alone."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = f"{head}{START}\n{table}{END}{rest.split(END, 1)[1]}"
    else:
        text = f"{START}\n{table}{END}\n"
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    ap.add_argument("--full", action="store_true", help="run the whole suite for each mutant, not its subset")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per mutant before it counts as timed out")
    ap.add_argument("--report", type=Path, help="also write the results table (Markdown) to this file")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy and print where it is")
    args = ap.parse_args(argv)

    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        ap.error(f"no mutant called {', '.join(sorted(unknown))}; --list shows them")
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:30s} {m.file:45s} {m.claim}")
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="phenaki-mutants-"))
    try:
        tree = scratch_copy(ROOT, scratch / "tree")
        rows = []
        for m in chosen:
            r = run_mutant(m, tree, args.full, args.timeout)
            rows.append((m, r))
            where = r.get("test") or r.get("detail", "")
            print(f"{m.name:30s} {r['result']:18s} {where}  ({r.get('seconds', 0):.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"scratch copy kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    table = report_markdown(rows, args.full)
    print()
    print(table)
    if args.report:
        write_report(args.report, table)
    return 0 if all(r["result"] == "caught" for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
