"""Two renders on one pipeline, interleaved on purpose rather than by the thread scheduler's luck.

tests/test_concurrent_sampling.py runs two renders at once and lets the threads interleave as
they will; on the tiny test model a thread can finish a whole sampling step, or a whole
cancelled render, within one switch interval, so a pipeline that shared its per-call state
could still pass there (scripts/mutation_check.py showed it for a shared interrupt flag). Here
the two renders are made to meet at chosen steps, so shared state shows every time.
"""
import threading

import numpy as np
import pytest

from phenaki_core import Segment, Story, StoryRenderer
from phenaki_core.story import RenderCancelled

WATCHDOG_S = 120  # a render stuck at a meeting point fails with a message; not a speed check


def _story(prompt, seed):
    return Story([Segment(prompt, 11, seed)], num_inference_steps=4)


def _frames(pipe, story, **hooks):
    r = StoryRenderer(pipe, story)
    r.render(**hooks)
    return r.frames()


def _together(*jobs):
    results, errors = [None] * len(jobs), []

    def run(i, job):
        try:
            results[i] = job()
        except BaseException as e:  # surfaced below, with its type
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WATCHDOG_S * 2)
    assert not any(t.is_alive() for t in threads), "a render hung"
    if errors:
        raise errors[0]
    return results


def test_a_cancel_stops_only_the_render_that_asked_even_mid_step_of_another(tiny_pipe):
    """B is held inside a sampling step while A cancels; B then goes on and finishes with the
    frames it gets alone (a cancel flag shared by the pipeline would stop B there)."""
    a, b = _story("a red circle moves right", 2), _story("a green circle moves down", 3)
    solo_b = _frames(tiny_pipe, b)
    b_inside, a_stopped = threading.Event(), threading.Event()

    def b_step(segment, clip, clips, step, steps):
        if step == 1 and not b_inside.is_set():
            b_inside.set()
            assert a_stopped.wait(WATCHDOG_S), "the cancelled render never stopped"

    def a_should_cancel():
        assert b_inside.wait(WATCHDOG_S), "the other render never reached its step"
        return True

    def cancelled():
        try:
            with pytest.raises(RenderCancelled):
                _frames(tiny_pipe, a, should_cancel=a_should_cancel)
        finally:
            a_stopped.set()
        return "cancelled"

    outcome, frames_b = _together(cancelled, lambda: _frames(tiny_pipe, b, on_step=b_step))
    assert outcome == "cancelled"
    assert np.array_equal(frames_b, solo_b)


def test_renders_stepping_in_lockstep_get_their_solo_frames(tiny_pipe):
    """Both renders meet after every sampling step, so each step of one falls between two steps
    of the other: a scheduler that kept one call's state for the next step would mix them."""
    a, b = _story("a red circle moves right", 5), _story("a blue square grows", 6)
    solo_a, solo_b = _frames(tiny_pipe, a), _frames(tiny_pipe, b)
    meet = threading.Barrier(2, timeout=WATCHDOG_S)

    def step(*_):
        meet.wait()

    both_a, both_b = _together(lambda: _frames(tiny_pipe, a, on_step=step),
                               lambda: _frames(tiny_pipe, b, on_step=step))
    assert np.array_equal(both_a, solo_a)
    assert np.array_equal(both_b, solo_b)
