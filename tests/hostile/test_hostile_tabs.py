"""Two tabs on one project, and one API client's concurrent first calls.

A tab names a segment by the number it showed (or by its stable id); the studio turns that
into the segment's id as that tab saw it. An edit of a segment another tab changed or
deleted since is refused with a message; other tabs' changes elsewhere are merged (the edit
lands on the same segment wherever it now is). Undo undoes the asking tab's own action.
"""
from __future__ import annotations

import concurrent.futures as cf

import pytest
from gradio_client.exceptions import AppError
from hostile_helpers import add, assert_plain, client, project_state, summary

pytestmark = pytest.mark.hostile("tabs")
PROMPTS = ["a red circle moves right", "a green square moves left", "a blue triangle moves up"]


@pytest.fixture(scope="module")
def pair(studio):
    return client(studio[0]), client(studio[0])


def two_tabs(pair):
    """Tab A makes a three-segment project; tab B opens the same project by its id."""
    a, b = pair
    a.predict("", api_name="/open_project")  # a new project of its own
    for n, p in enumerate(PROMPTS):
        s = add(a, p, seed=n + 1)
    b.predict(s["project_id"], api_name="/open_project")
    ids = [x["id"] for x in s["segments"]]
    return a, b, ids


def prompts_by_id(s):
    return {x["id"]: x["prompt"] for x in s["segments"]}


def order(s):
    return [x["id"] for x in s["segments"]]


# What tab B does after tab A showed the timeline (with segment 2 selected), and whether it
# touches A's segment 2: "deleted", "changed", or None (A's edit applies to it, wherever it is).
B_ACTIONS = {
    "delete 1": (lambda b: b.predict(1, "frames", api_name="/delete_segment"), None),
    "move 1 down": (lambda b: b.predict(1, "frames", api_name="/move_down"), None),
    "insert before 1": (lambda b: b.predict(1, "a white circle", 11, "frames", 9, True, "continue",
                                            api_name="/insert_segment"), None),
    "duplicate 1": (lambda b: b.predict(1, "frames", api_name="/duplicate_segment"), None),
    "add at end": (lambda b: add(b, "a yellow square grows"), None),
    "edit 3": (lambda b: b.predict(3, "a cyan circle", 11, "frames", 5, True, "continue",
                                   api_name="/update_segment"), None),
    "delete 2": (lambda b: b.predict(2, "frames", api_name="/delete_segment"), "deleted"),
    "edit 2": (lambda b: b.predict(2, "a purple circle", 11, "frames", 6, True, "continue",
                                   api_name="/update_segment"), "changed"),
    "move 2 up, edit it": (lambda b: (b.predict(2, "frames", api_name="/move_up"),
                                      b.predict(1, "a pink square", 11, "frames", 6, True, "continue",
                                                api_name="/update_segment")), "changed"),
}
A_EDITS = {
    "update": lambda a: a.predict(2, "a black circle moves down", 11, "frames", 8, True, "continue",
                                  api_name="/update_segment")[0],
    "delete": lambda a: a.predict(2, "frames", api_name="/delete_segment")[0],
}


@pytest.mark.parametrize("a_edit", list(A_EDITS))
@pytest.mark.parametrize("b_action", list(B_ACTIONS))
def test_edit_lands_on_the_segment_the_tab_saw(studio, pair, b_action, a_edit):
    root = studio[1]
    a, b, ids = two_tabs(pair)
    a.predict(2, "frames", api_name="/select_segment")  # A shows the timeline, segment 2 selected
    act, touches = B_ACTIONS[b_action]
    act(b)
    after_b = summary(b)
    target = ids[1]
    if touches:
        with pytest.raises(AppError) as e:
            A_EDITS[a_edit](a)
        msg = str(e.value)
        assert_plain(msg, root)
        assert f"{touches} in another tab" in msg, msg
        assert project_state(summary(b)) == project_state(after_b)  # nothing changed
        return
    s = A_EDITS[a_edit](a)
    others = {i: p for i, p in prompts_by_id(after_b).items() if i != target}
    if a_edit == "update":
        assert prompts_by_id(s)[target] == "a black circle moves down"
        assert {i: p for i, p in prompts_by_id(s).items() if i != target} == others  # no other segment touched
    else:
        assert target not in prompts_by_id(s) and {i: p for i, p in prompts_by_id(s).items()} == others


def test_undo_undoes_the_asking_tabs_action(studio, pair):
    """The issue's case: A edits (what is now) segment 2 after B deleted segment 1; B's Undo
    reverted A's edit instead of B's delete."""
    root = studio[1]
    a, b, ids = two_tabs(pair)
    a.predict(2, "frames", api_name="/select_segment")
    b.predict(1, "frames", api_name="/delete_segment")
    s = a.predict(2, "a black circle moves down", 11, "frames", 8, True, "continue", api_name="/update_segment")[0]
    assert prompts_by_id(s) == {ids[1]: "a black circle moves down", ids[2]: PROMPTS[2]}
    with pytest.raises(AppError) as e:  # the last change is A's: B may not undo it
        b.predict(1, "frames", api_name="/undo")
    assert_plain(str(e.value), root)
    assert "another tab" in str(e.value)
    s = a.predict(1, "frames", api_name="/undo")[0]  # A undoes its own edit
    assert prompts_by_id(s) == {ids[1]: PROMPTS[1], ids[2]: PROMPTS[2]}
    s = b.predict(1, "frames", api_name="/undo")[0]  # now B's delete is the last: B undoes it
    assert order(s) == ids and [x["prompt"] for x in s["segments"]] == PROMPTS


@pytest.mark.parametrize("ref", ["id", "stale id"])
def test_edit_by_stable_id(studio, pair, ref):
    root = studio[1]
    a, b, ids = two_tabs(pair)
    b.predict(1, "frames", api_name="/delete_segment")
    target = ids[2] if ref == "id" else ids[0]
    if ref == "id":
        s = a.predict(target, "a grey circle", 11, "frames", 4, True, "continue", api_name="/update_segment")[0]
        assert prompts_by_id(s)[target] == "a grey circle" and prompts_by_id(s)[ids[1]] == PROMPTS[1]
    else:
        with pytest.raises(AppError, match="no segment with id") as e:
            a.predict(target, "a grey circle", 11, "frames", 4, True, "continue", api_name="/update_segment")
        assert_plain(str(e.value), root)


@pytest.mark.parametrize("calls", [2, 4, 8])
def test_concurrent_first_calls_land_in_one_session(studio, calls):
    """Four concurrent first calls of one API client made separate sessions and kept 1, 3 or 4
    of 4 segments."""
    url, _, _ = studio
    c = client(url)
    jobs = [c.submit(None, f"a red circle moves right {n}", 11, "frames", n, True, "continue",
                     api_name="/add_segment") for n in range(calls)]
    outs = [j.result(timeout=120)[0] for j in jobs]
    s = summary(c)
    assert sorted(x["prompt"] for x in s["segments"]) == sorted(f"a red circle moves right {n}" for n in range(calls))
    assert len({o["project_id"] for o in outs}) == 1


def test_many_clients_first_calls_stay_apart(studio):
    url, _, _ = studio
    clients = [client(url) for _ in range(4)]
    with cf.ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda nc: add(nc[1], f"a blue square {nc[0]}"), enumerate(clients)))
    assert len({o["project_id"] for o in outs}) == 4
    assert all(len(o["segments"]) == 1 for o in outs)
