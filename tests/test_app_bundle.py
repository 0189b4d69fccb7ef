"""Project bundles: the recipe and the renders in one zip; reading one trusts nothing."""
import io
import json
import struct
import zipfile

import numpy as np
import pytest

from app.bundle import (
    MANIFEST,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    BundleError,
    is_bundle,
    read_bundle,
    write_bundle,
)
from app.project import Project
from phenaki_core.story import RenderedSegment, Segment

SAMPLING = (12, 3.0, 5)


def _project(n_segments: int = 3, frames: int = 11, size: int = 64):
    """A project with a rendered take per segment (random frames stand in for renders), and a
    second take on segment 2; returns (project, takes as write_bundle takes them)."""
    rng = np.random.default_rng(0)
    p = Project(frame_size=size)
    for i in range(n_segments):
        p.add(Segment(f"a red circle moves {'right' if i % 2 else 'left'}", frames, seed=i))
    takes = {}
    for i, it in enumerate(p.items):
        for seed in ([it.segment.seed, 99] if i == 1 else [it.segment.seed]):
            seg = Segment(it.segment.prompt, frames, seed)
            video = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
            take = p.add_take(it.id, RenderedSegment(seg, "none" if i == 0 else f"{i:016x}", video), SAMPLING)
            takes[f"{it.id}-{take.id}"] = {"frames": video}
    return p, takes


def test_round_trip_is_bit_exact_and_keeps_the_recipe(tmp_path):
    p, takes = _project()
    recipe = p.to_json()
    path = write_bundle(tmp_path / "story.zip", recipe, takes, frame_size=64)
    assert is_bundle(path)
    got_json, got = read_bundle(path, frame_size=64)
    assert got_json == recipe  # byte for byte: scripts read the same recipe
    assert set(got) == set(takes) and len(got) == 4
    for key, arrays in takes.items():
        assert got[key]["frames"].dtype == np.uint8
        assert np.array_equal(got[key]["frames"], arrays["frames"])
    # the recipe loads as a project whose takes the bundle's frames fill
    q = Project.from_json(got_json, frame_size=64)
    for it in q.items:
        for t in it.takes:
            assert f"{it.id}-{t.id}" in got


def test_same_project_writes_the_same_bytes(tmp_path):
    p, takes = _project(2)
    a = write_bundle(tmp_path / "a.zip", p.to_json(), takes).read_bytes()
    b = write_bundle(tmp_path / "b.zip", p.to_json(), takes).read_bytes()
    assert a == b


def test_tokens_travel_beside_frames(tmp_path):
    p, takes = _project(1)
    key = next(iter(takes))
    takes[key]["tokens"] = np.arange(2 * 6 * 8 * 8, dtype=np.int16).reshape(2, 6, 8, 8)  # two clips' grids
    takes[key]["context_lengths"] = np.array([0, 5], np.int16)
    _, got = read_bundle(write_bundle(tmp_path / "s.zip", p.to_json(), takes))
    assert np.array_equal(got[key]["tokens"], takes[key]["tokens"]) and got[key]["tokens"].dtype == np.int16
    assert got[key]["context_lengths"].tolist() == [0, 5]
    del takes[key]["context_lengths"]  # a take has both or neither
    with pytest.raises(BundleError, match="come together"):
        write_bundle(tmp_path / "t.zip", p.to_json(), takes)


def test_project_without_renders_bundles_its_recipe(tmp_path):
    p = Project()
    p.add(Segment("a blue square grows", 11, 0))
    recipe, takes = read_bundle(write_bundle(tmp_path / "s.zip", p.to_json(), {}))
    assert recipe == p.to_json() and takes == {}
    assert not is_bundle(tmp_path / "nope") and not is_bundle(__file__)


def test_writing_refuses_takes_that_do_not_fit_the_recipe(tmp_path):
    p, takes = _project(2)
    key = next(iter(takes))
    with pytest.raises(BundleError, match="not a take of the project"):
        write_bundle(tmp_path / "s.zip", p.to_json(), {"0123abcd-7": takes[key]})
    with pytest.raises(BundleError, match="10 frames, its segment has 11"):
        write_bundle(tmp_path / "s.zip", p.to_json(), {key: {"frames": takes[key]["frames"][:10]}})
    with pytest.raises(BundleError, match="uint8"):
        write_bundle(tmp_path / "s.zip", p.to_json(), {key: {"frames": takes[key]["frames"].astype(np.float32)}})
    with pytest.raises(BundleError, match="this model makes 32x32"):
        write_bundle(tmp_path / "s.zip", p.to_json(), takes, frame_size=32)
    assert not list(tmp_path.iterdir())  # nothing half-written


# -- hostile bundles ------------------------------------------------------------------------------
def _zip(tmp_path, entries: dict[str, bytes], name="bad.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return path


def _good_entries(tmp_path):
    p, takes = _project(1)
    path = write_bundle(tmp_path / "good.zip", p.to_json(), takes)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}, next(iter(takes))


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("change, message", [
    (lambda e, k: {**e, "../../etc/passwd": b"x"}, "entries it does not list: ../../etc/passwd"),
    (lambda e, k: {**e, "/abs/path": b"x"}, "does not list"),
    (lambda e, k: {n: v for n, v in e.items() if n != MANIFEST}, "not a Phenaki Studio bundle"),
    (lambda e, k: {**e, MANIFEST: b"{not json"}, "not valid JSON"),
    (lambda e, k: {**e, MANIFEST: json.dumps({"format": "x"}).encode()}, "expected \"format\""),
    (lambda e, k: {n: v for n, v in e.items() if not n.endswith(".npy")}, "missing takes/"),
    (lambda e, k: {**e, "project.json": b"\xff\xfe"}, "not UTF-8"),
    (lambda e, k: {**e, "project.json": b"[1, 2"}, "project.json is not valid JSON"),
    (lambda e, k: {**e, f"takes/{k}.frames.npy": _npy(np.zeros((11, 64, 64, 3), np.float32))}, "manifest says|uint8"),
    (lambda e, k: {**e, f"takes/{k}.frames.npy": _npy(np.array([{"a": 1}], dtype=object))}, "plain little-endian"),
    (lambda e, k: {**e, f"takes/{k}.frames.npy": b"\x93NUMPY junk"}, "not a readable .npy"),
    (lambda e, k: {**e, f"takes/{k}.frames.npy": _npy(np.zeros((11, 64, 64, 3), np.uint8))[:-100]},
     "does not match its header"),
    (lambda e, k: {**e, f"takes/{k}.frames.npy": _npy(np.zeros((9, 64, 64, 3), np.uint8)),
                   MANIFEST: _manifest_with(e, k, [9, 64, 64, 3])}, "9 frames, its segment has 11"),
    (lambda e, k: {**e, f"takes/{k}.frames.npy": _npy(np.zeros((11, 64, 64, 4), np.uint8)),
                   MANIFEST: _manifest_with(e, k, [11, 64, 64, 4])}, r"\(frames, height, width, 3\)"),
])
def test_hostile_bundles_say_what_is_wrong(tmp_path, change, message):
    entries, key = _good_entries(tmp_path)
    path = _zip(tmp_path, change(entries, key))
    with pytest.raises(BundleError, match=message):
        read_bundle(path, frame_size=64)


def _manifest_with(entries, key, shape):
    m = json.loads(entries[MANIFEST])
    m["takes"][key]["frames"] = shape
    return json.dumps(m).encode()


def test_frames_of_another_size_are_refused(tmp_path):
    entries, _ = _good_entries(tmp_path)
    with pytest.raises(BundleError, match="this model makes 32x32"):
        read_bundle(_zip(tmp_path, entries), frame_size=32)


def test_too_many_entries_are_refused_from_the_end_record(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(MAX_ENTRIES + 1):
            z.writestr(f"e{i}", b"")
    with pytest.raises(BundleError, match=f"at most {MAX_ENTRIES}"):
        read_bundle(path)


def _patch_declared_size(path, name: str, size: int):
    """Rewrite an entry's uncompressed size in the central directory (what zipfile trusts)."""
    data = bytearray(path.read_bytes())
    at = 0
    while True:
        at = data.find(b"PK\x01\x02", at)
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + n].decode() == name:
            break
        at += 4
    struct.pack_into("<L", data, at + 24, size)
    path.write_bytes(bytes(data))


def test_declared_size_bomb_is_refused_before_decompressing(tmp_path):
    entries, key = _good_entries(tmp_path)
    path = _zip(tmp_path, entries)
    _patch_declared_size(path, f"takes/{key}.frames.npy", MAX_ENTRY_BYTES + 1)
    with pytest.raises(BundleError, match="unpacks to 256 MB"):
        read_bundle(path)


def test_compression_ratio_bomb_is_refused(tmp_path):
    entries, key = _good_entries(tmp_path)
    entries[f"takes/{key}.frames.npy"] = _npy(np.zeros((11, 64, 64, 3), np.uint8))  # deflates to ~0.2 kB
    path = _zip(tmp_path, entries)
    _patch_declared_size(path, f"takes/{key}.frames.npy", 200 * 2**20)  # 200 MB from a few kB
    with pytest.raises(BundleError, match="zip bomb"):
        read_bundle(path)


def test_an_entry_larger_than_declared_is_damaged_not_read_whole(tmp_path):
    entries, _ = _good_entries(tmp_path)
    path = _zip(tmp_path, entries)
    _patch_declared_size(path, "project.json", 10)  # zipfile stops at 10 bytes; the CRC then fails
    with pytest.raises(BundleError, match="damaged|not valid JSON"):
        read_bundle(path)


def test_a_real_deflate_bomb_outside_the_manifest_is_never_unpacked(tmp_path):
    entries, _ = _good_entries(tmp_path)
    entries["bomb.bin"] = b"\0" * (64 * 2**20)  # deflates to ~64 kB
    path = _zip(tmp_path, entries)
    assert path.stat().st_size < 2**20
    with pytest.raises(BundleError, match="does not list: bomb.bin"):
        read_bundle(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x05\x06" + b"\x00" * 4, b"PK\x03\x04" + b"\x00" * 100])
def test_not_a_zip_says_so(tmp_path, content):
    path = tmp_path / "x.zip"
    path.write_bytes(content)
    with pytest.raises(BundleError, match="not a zip|damaged|not a bundle"):
        read_bundle(path)


def test_truncated_bundle_says_damaged(tmp_path):
    p, takes = _project(2)
    path = write_bundle(tmp_path / "s.zip", p.to_json(), takes)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BundleError):
        read_bundle(path)
    with pytest.raises(BundleError, match="cannot read"):
        read_bundle(tmp_path / "missing.zip")


def test_duplicate_and_encrypted_entries_are_refused(tmp_path):
    entries, _ = _good_entries(tmp_path)
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n, v in entries.items():
            z.writestr(n, v)
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("project.json", b"{}")
    with pytest.raises(BundleError, match="twice"):
        read_bundle(path)
    path = _zip(tmp_path, entries, "enc.zip")
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | 1)
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="encrypted"):
        read_bundle(path)


def test_corrupted_bytes_only_ever_give_a_bundle_error(tmp_path):
    p, takes = _project(1, frames=6, size=16)
    good = write_bundle(tmp_path / "good.zip", p.to_json(), takes).read_bytes()
    rng = np.random.default_rng(7)
    path = tmp_path / "fuzz.zip"
    outcomes = set()
    for _ in range(300):
        data = bytearray(good)
        for at in rng.integers(0, len(data), rng.integers(1, 4)):
            data[at] = rng.integers(0, 256)
        path.write_bytes(bytes(data))
        try:
            read_bundle(path)
            outcomes.add("read")
        except BundleError:
            outcomes.add("refused")
    assert "refused" in outcomes
