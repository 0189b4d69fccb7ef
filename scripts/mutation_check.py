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
import re
import shutil
import subprocess
import sys
import tempfile
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


MUTANTS = [
    Mutant("atomic-write", "io writes go to a temporary file renamed into place",
           "phenaki_core/io.py",
           "        yield Path(tmp)\n        os.replace(tmp, path)\n",
           "        yield path  # straight to the target\n",
           ("tests/test_io.py",)),
    Mutant("render-serialisation", "the studio renders one story at a time on the shared pipeline",
           "app/ui.py",
           'RENDER = dict(outputs=RENDER_OUT, concurrency_limit=1, concurrency_id="render",',
           'RENDER = dict(outputs=RENDER_OUT, concurrency_limit=None, concurrency_id="render",',
           ("tests/test_app_api.py", "-k", "two_clients")),
    Mutant("revision-transformer-only", "pipe.revision covers every weight of every component",
           "phenaki_core/pipelines/pipeline_phenaki.py",
           "for module in (self.text_encoder, self.vqvae, self.transformer):",
           "for module in (self.transformer,):",
           ("tests/test_pipeline_io.py", "-k", "revision")),
    Mutant("revision-no-scheduler", "pipe.revision covers the scheduler's settings",
           "phenaki_core/pipelines/pipeline_phenaki.py",
           "h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())",
           "h = hashlib.sha256(b'')",
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
           "phenaki_core/schedulers/scheduling_maskgit.py",
           'self._log_prob = torch.full(tokens.shape, float("inf"), device=tokens.device)',
           'self._log_prob = torch.full(tokens.shape, float("-inf"), device=tokens.device)  # known = least likely',
           ("tests/test_sampling.py", "tests/test_story.py")),
    Mutant("context-not-re-encoded", "the next clip's prefix is the C-ViViT tokens of the last K frames",
           "phenaki_core/pipelines/pipeline_phenaki.py",
           "            tokens[:, : prefix_tokens.shape[1]] = prefix_tokens.to(tokens.device)\n",
           "            pass  # the context is ignored\n",
           ("tests/test_story.py",)),
    Mutant("context-window-grows", "every clip continues the last K frames, never the whole past",
           "phenaki_core/pipelines/story.py",
           "        context, clip = tail[-k:], clip + 1",
           "        context, clip = tail[-(2 * k - 1):], clip + 1",
           ("tests/test_story.py",)),
    Mutant("sidecar-seed-offset", "a sidecar re-renders the same frames bit for bit",
           "phenaki_core/pipelines/story.py",
           '            segments = [Segment(**s) for s in data["segments"]]',
           '            segments = [Segment(**{**s, "seed": s.get("seed", 0) + 1}) for s in data["segments"]]',
           ("tests/test_io.py", "tests/test_story.py")),
    Mutant("sidecar-start-frames-lossy", "a sidecar carries the frames a story started from exactly",
           "phenaki_core/io.py",
           '    Image.fromarray(frame).save(buffer, format="PNG")',
           '    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)',
           ("tests/test_io.py",)),
    Mutant("sidecar-drops-guidance", "a sidecar carries every sampling setting",
           "phenaki_core/pipelines/story.py",
           'fields = {k: data[k] for k in ("num_inference_steps", "guidance_scale", "context_frames", "model",',
           'fields = {k: data[k] for k in ("num_inference_steps", "context_frames", "model",',
           ("tests/test_io.py", "tests/test_story.py")),
    Mutant("regenerate-recomputes-others", "regenerating segment k recomputes k alone",
           "phenaki_core/pipelines/story.py",
           "        self.results[index] = render_segment(self.pipe, self.story, index, self._before(index), **hooks)\n",
           "        for j in range(index):\n"
           "            self.results[j] = render_segment(self.pipe, self.story, j, self._before(j), **hooks)\n"
           "        self.results[index] = render_segment(self.pipe, self.story, index, self._before(index), **hooks)\n",
           ("tests/test_story.py", "-k", "regenerating")),
    Mutant("stale-not-flowing", "segments after a regenerated one are marked stale",
           "phenaki_core/pipelines/story.py",
           '            upstream = bool(flags) and flags[-1] and seg.transition == "continue"',
           "            upstream = False",
           ("tests/test_story.py", "-k", "regenerating")),
    Mutant("undo-broken", "undo restores the project as it was before the last action",
           "app/project.py",
           "        self._restore(self._undo.pop())",
           "        self._undo.pop()",
           ("tests/test_app_project.py", "-k", "undo")),
    Mutant("cancel-ignored-engine", "the story engine stops within a sampling step when asked",
           "phenaki_core/pipelines/story.py",
           "        if should_cancel is not None and should_cancel():\n            p._interrupt = True\n",
           "        pass  # the stop flag is never read\n",
           ("tests/test_story.py", "-k", "cancel")),
    Mutant("cancel-ignored-studio", "the studio's Cancel stops the render on the pipeline",
           "app/render.py",
           "res = r.render_segment(i, should_cancel=self.cancel.is_set, on_step=on_step)",
           "res = r.render_segment(i, should_cancel=None, on_step=on_step)",
           ("tests/test_app_api.py", "-k", "cancel")),
    Mutant("session-isolation", "each browser session has its own project",
           "app/ui.py",
           "        return remember(Studio(pipe, new_session_id(), projects_dir, work_dir, model))",
           "        return remember(next(iter(sessions.values())) if sessions else "
           "Studio(pipe, new_session_id(), projects_dir, work_dir, model))",
           ("tests/test_app_api.py", "-k", "sessions_are_separate")),
    Mutant("prompt-length-unbounded", "prompts longer than the limit are refused with a message",
           "phenaki_core/pipelines/story.py",
           "            if len(s.prompt) > MAX_PROMPT_CHARS:",
           "            if False:",
           ("tests/test_story.py", "tests/test_app_project.py", "-k", "bad")),
    Mutant("guidance-sign-flipped", "classifier-free guidance pushes towards the prompt",
           "phenaki_core/pipelines/pipeline_phenaki.py",
           "logits = null + scale * (cond - null)",
           "logits = null - scale * (cond - null)",
           ("tests/test_sampling.py",)),
    Mutant("refinement-off-by-one", "refinement re-masks floor(n * fraction * left / steps) tokens",
           "phenaki_core/schedulers/scheduling_maskgit.py",
           "        left = self.config.refine_steps - (step - (self.num_inference_steps - 1))",
           "        left = self.config.refine_steps - (step - self.num_inference_steps)",
           ("tests/test_sampling.py",)),
    Mutant("export-drops-a-frame", "the exported video holds every frame of the story",
           "phenaki_core/io.py",
           "    frames = upscale(frames, size, resample)\n    path.parent.mkdir",
           "    frames = upscale(frames, size, resample)[:-1] if len(frames) > 1 else upscale(frames, size, resample)\n"
           "    path.parent.mkdir",
           ("tests/test_io.py",)),
    Mutant("segment-not-trimmed", "a segment lasts exactly the frames it asks for",
           "phenaki_core/pipelines/story.py",
           "    return RenderedSegment(seg, fingerprint, np.concatenate(frames)[: seg.frames], tokens)",
           "    return RenderedSegment(seg, fingerprint, np.concatenate(frames)[-seg.frames:], tokens)",
           ("tests/test_story.py",)),
    Mutant("init-frames-ignored", "a story started from an image continues that image",
           "phenaki_core/pipelines/story.py",
           "        if need > 0 and self.init_frames is not None:",
           "        if False:",
           ("tests/test_story.py", "-k", "init")),
    Mutant("quality-model-broken", "the shipped model follows its prompts",
           "phenaki_core/pipelines/pipeline_phenaki.py",
           "        states, mask = self.encode_prompt(prompts)\n        b, g = len(prompts), self.vqvae.grid",
           "        states, mask = self.encode_prompt(prompts)\n        states = states.roll(1, 0)  # each clip gets"
           " another clip's prompt\n        b, g = len(prompts), self.vqvae.grid",
           ("tests/test_quality_floor.py",)),
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


FAILED = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.MULTILINE)


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
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *args]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.monotonic()
    try:
        run = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"result": "timed out", "detail": f"no verdict within {timeout} s", "seconds": timeout}
    finally:
        path.write_text(original, encoding="utf-8")
    seconds = time.monotonic() - start
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
