"""One pipeline shared by two renders at once: each gets exactly the frames it gets alone.

The scheduler keeps no per-call state (it is handed back and forth as MaskGitSchedulerState),
and the interrupt flag and step count are per thread, so the studio's render queue is a
choice for throughput and memory, not what keeps frames right."""
import threading

import numpy as np
import pytest

from phenaki_core import Segment, Story, StoryRenderer
from phenaki_core.story import RenderCancelled


def _story(prompt, seed, steps):
    return Story([Segment(prompt, 17, seed), Segment(prompt.replace("right", "down"), 6, seed + 1)],
                 num_inference_steps=steps)


def _render(pipe, story, **hooks):
    r = StoryRenderer(pipe, story)
    r.render(**hooks)
    return r.frames()


def _run_together(*jobs):
    results, errors = [None] * len(jobs), []
    start = threading.Barrier(len(jobs))

    def run(i, job):
        try:
            start.wait()
            results[i] = job()
        except BaseException as e:  # surfaced below, with its type
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a render hung"
    if errors:
        raise errors[0]
    return results


def test_two_renders_at_once_match_their_solo_renders_bit_for_bit(tiny_pipe):
    a, b = _story("a red circle moves right", 1, 6), _story("a blue square moves right", 7, 4)  # other step counts too
    solo_a, solo_b = _render(tiny_pipe, a), _render(tiny_pipe, b)
    for _ in range(2):
        both_a, both_b = _run_together(lambda: _render(tiny_pipe, a), lambda: _render(tiny_pipe, b))
        assert np.array_equal(both_a, solo_a) and np.array_equal(both_b, solo_b)


def test_cancelling_one_render_leaves_the_other_untouched(tiny_pipe):
    a, b = _story("a red circle moves right", 2, 5), _story("a green circle moves right", 3, 5)
    solo_b = _render(tiny_pipe, b)
    steps = []

    def cancelled():
        with pytest.raises(RenderCancelled):
            _render(tiny_pipe, a, on_step=lambda *s: steps.append(s), should_cancel=lambda: len(steps) >= 2)
        return "cancelled"

    outcome, frames_b = _run_together(cancelled, lambda: _render(tiny_pipe, b))
    assert outcome == "cancelled" and len(steps) == 2
    assert np.array_equal(frames_b, solo_b)
