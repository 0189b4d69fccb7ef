"""Project bundles: one zip file holding a project's recipe and its renders.

Opening a bundle shows the finished story at once, with no render call. The recipe inside
is today's project JSON, byte for byte as `Project.to_json` wrote it (so a script that
reads project files reads the recipe unchanged, and re-rendering it is bit-exact); the
renders are each take's frames as `.npy` (uint8, (T, H, W, 3)), optionally with its tokens.

    bundle.zip
      phenaki-bundle.json           {"format": "phenaki-studio-bundle/1", "project": "project.json",
                                     "takes": {"<item id>-<take id>": {"frames": [T, H, W, 3], ...}}}
      project.json                  the recipe (Project.to_json)
      takes/<item id>-<take id>.frames.npy
      takes/<item id>-<take id>.tokens.npy            (optional) the clips' token grids
      takes/<item id>-<take id>.context_lengths.npy   (with tokens) context frames each clip began with

The manifest also names the tokenizer the tokens belong to ("tokenizer": its fingerprint,
`PhenakiPipeline.tokenizer_revision`); read for another tokenizer, the tokens are left out
and those takes' frames are tokenized again when drawn.

Tokens (clips, latent frames, grid, grid), int16 for the shipped model's 1,024 codes, with
their context lengths (clips,), let an export at a size the model draws draw the sampled
tokens rather than tokenize the frames again; a take has both or neither. Checked against the
model (`TokenSpec`): its grid, every code below its codebook size, and context lengths that
make exactly the take's frames (each clip adds at least one frame).

A take's key is `<item id>-<take id>`, as in the studio's autosave (`frames.npz`), so the
same code that restores an autosave restores a bundle:

    write_bundle(path, project.to_json(), {f"{it.id}-{t.id}": {"frames": t.frames}
                                          for it in project.items for t in it.takes if t.frames is not None})
    project_json, takes = read_bundle(path, frame_size=project.frame_size)
    project = Project.from_json(project_json, **limits)   # then attach takes[key]["frames"] to each take

Reading trusts nothing: the file, the zip's end record and every entry's declared size are
checked before anything is decompressed (a zip bomb is refused from its headers), names
are matched exactly against the manifest (no path is ever joined or extracted), and every
array's header (dtype, shape) is checked before its data is read; each take must belong to
the recipe and have its segment's frame count. Any failure is a BundleError whose message
says what is wrong, in plain words.
"""
from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .project import MAX_PROJECT_BYTES, atomic_write

BUNDLE_FORMAT = "phenaki-studio-bundle/1"
MANIFEST = "phenaki-bundle.json"
PROJECT_ENTRY = "project.json"
MAX_BUNDLE_BYTES = 512 * 2**20  # the file on disk
MAX_UNPACKED_BYTES = 512 * 2**20  # all entries, as declared, together
MAX_ENTRY_BYTES = 256 * 2**20  # one entry
MAX_MANIFEST_BYTES = 2 * 2**20
MAX_ENTRIES = 4096
MAX_RATIO = 2000  # declared size / compressed size; deflate tops out near 1030 on real data
MAX_FRAMES = 100_000
MAX_FRAME_SIDE = 2048
TOKEN_DTYPES = {np.dtype(t) for t in ("int16", "int32", "int64", "uint8", "uint16", "uint32")}
TAKE_ARRAYS = ("frames", "tokens", "context_lengths")
NPY_HEADER_BYTES = 4096  # an .npy header beyond its data; numpy writes 128
KEY_RE = re.compile(r"[0-9a-f]{8}-[1-9][0-9]{0,8}")
_EOCD = struct.Struct("<4s4H2LH")  # the zip end-of-central-directory record (APPNOTE 4.3.16)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same project writes the same bytes


class BundleError(ValueError):
    """A bundle that cannot be written or read; the message says why."""


# -- arrays -------------------------------------------------------------------------------
def _check_frames(a: np.ndarray, where: str, frame_size: int | None) -> None:
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[3] != 3:
        raise BundleError(f"{where}: frames must be uint8 (frames, height, width, 3), got {a.dtype} {list(a.shape)}")
    t, h, w, _ = a.shape
    if not 1 <= t <= MAX_FRAMES or not 1 <= h <= MAX_FRAME_SIDE or not 1 <= w <= MAX_FRAME_SIDE:
        raise BundleError(f"{where}: {t} frames of {w}x{h} is outside the limits "
                          f"(1 to {MAX_FRAMES} frames, at most {MAX_FRAME_SIDE} px a side)")
    if frame_size is not None and (h, w) != (frame_size, frame_size):
        raise BundleError(f"{where}: frames are {w}x{h}, this model makes {frame_size}x{frame_size}")


class TokenSpec(NamedTuple):
    """What a take's tokens must be for the model that draws them (the pipeline's facts,
    through the project's limits)."""

    shape: tuple[int, int, int]  # one clip's grid: (latent frames, grid, grid)
    codes: int  # the codebook size: every token below it
    clip_frames: int
    temporal_patch: int
    tokenizer: str  # the tokenizer's fingerprint (pipe.tokenizer_revision): what the codes mean

    @classmethod
    def of(cls, limits: dict) -> TokenSpec | None:
        """From a project's limits (Project.limits()); None when they do not say."""
        if any(limits.get(k) is None for k in ("codebook_size", "token_shape", "tokenizer")):
            return None
        return cls(tuple(limits["token_shape"]), int(limits["codebook_size"]), int(limits.get("clip_frames", 11)),
                   int(limits.get("temporal_patch", 2)), str(limits["tokenizer"]))


def check_take_tokens(tokens, context_lengths, n_frames: int, spec: TokenSpec | None, where: str) -> None:
    """A take's tokens and context lengths, or a BundleError saying what is wrong: integer
    grids (clips, latent frames, grid, grid), one context length per clip, no more clips than
    frames; with `spec`, the model's grid, codes below its codebook size, and context lengths
    that make exactly the take's `n_frames` (each valid for the tokenizer; only the first
    clip may start afresh)."""
    tokens, lengths = np.asarray(tokens), np.asarray(context_lengths)
    if tokens.dtype not in TOKEN_DTYPES or tokens.ndim != 4 or not tokens.shape[0]:
        raise BundleError(f"{where}: tokens must be whole numbers shaped (clips, latent frames, grid, grid), "
                          f"got {tokens.dtype} {list(tokens.shape)}")
    if not 1 <= len(tokens) <= n_frames:
        raise BundleError(f"{where}: {len(tokens)} clips of tokens for {n_frames} frames; each clip makes a frame at least")
    if lengths.dtype not in TOKEN_DTYPES or lengths.shape != (len(tokens),):
        raise BundleError(f"{where}: context lengths must be one whole number per clip ({len(tokens)}), "
                          f"got {lengths.dtype} {list(lengths.shape)}")
    if spec is None:
        return
    if tuple(tokens.shape[1:]) != tuple(spec.shape):
        raise BundleError(f"{where}: each clip's tokens are {list(tokens.shape[1:])}, this model's are "
                          f"{list(spec.shape)} (tokens of another model)")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= spec.codes:
        raise BundleError(f"{where}: token {lo if lo < 0 else hi} is outside this model's codebook (0 to {spec.codes - 1})")
    n, tp = spec.clip_frames, spec.temporal_patch
    lengths = lengths.astype(np.int64)
    for i, c in enumerate(lengths.tolist()):
        if not 0 <= c < n or (c and (c - 1) % tp) or (i and not c):
            raise BundleError(f"{where}: clip {i + 1} begins with {c} context frames; a clip continues 1 + n*{tp} "
                              f"frames below {n}{'' if i else ', or none'}")
    new = n - lengths
    if new.sum() < n_frames or new.sum() - new[-1] >= n_frames:
        raise BundleError(f"{where}: the clips make {int(new.sum())} new frames, not the take's {n_frames} "
                          "(context lengths that do not fit the frames)")


def _check_declared(key: str, kinds: dict, n_frames: int | None, spec: TokenSpec | None,
                    by_name: dict[str, zipfile.ZipInfo]) -> None:
    """Before anything is decompressed: a take's declared token shapes within what its frames
    need, and its entries no larger than those shapes hold."""
    if n_frames is None:
        raise BundleError(f"take {key} is not a take of the project's recipe")
    if ("tokens" in kinds) != ("context_lengths" in kinds):
        raise BundleError(f"take {key}: tokens and their context lengths come together, and one is missing")
    for kind in ("tokens", "context_lengths"):
        if kind not in kinds:
            continue
        shape = kinds[kind]
        ndim = 4 if kind == "tokens" else 1
        if not isinstance(shape, list) or len(shape) != ndim \
                or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_FRAMES for x in shape):
            raise BundleError(f"the bundle's {MANIFEST} gives take {key} a malformed {kind} shape")
        clips = shape[0]
        if clips > n_frames:
            raise BundleError(f"take {key} {kind}: {clips} clips for {n_frames} frames; each clip makes a frame at least")
        if kind == "tokens" and spec is not None and tuple(shape[1:]) != tuple(spec.shape):
            raise BundleError(f"take {key} tokens: each clip's tokens are {shape[1:]}, this model's are "
                              f"{list(spec.shape)} (tokens of another model)")
        limit = math.prod(shape) * 8 + NPY_HEADER_BYTES
        if by_name[f"takes/{key}.{kind}.npy"].file_size > limit:
            raise BundleError(f"take {key} {kind}: the entry is larger than its declared shape {shape} holds")


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _npy_from(raw: bytes, where: str) -> np.ndarray:
    """An array from .npy bytes, its header checked before its data is touched."""
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"npy version {version}")
        shape, fortran, dtype = read_header(f)
    except ValueError as e:
        raise BundleError(f"{where}: not a readable .npy array ({e})") from None
    if dtype.hasobject or fortran or dtype.byteorder == ">":
        raise BundleError(f"{where}: arrays must be plain little-endian numbers in C order, got {dtype}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - f.tell() != expected:
        raise BundleError(f"{where}: the array's data does not match its header's shape {list(shape)}")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=f.tell()) \
        .reshape(shape).copy()


# -- the recipe's takes --------------------------------------------------------------------
def _recipe_frame_counts(project_json: str) -> dict[str, int]:
    """`<item id>-<take id>` -> the frame count of that take's segment, from the recipe's
    items (the fields Project.to_json writes); full validation is Project.from_json's job."""
    try:
        data = json.loads(project_json)
        counts = {}
        for item in data.get("items") or []:
            for take in item.get("takes") or []:
                frames = take["segment"]["frames"]
                if isinstance(frames, int) and not isinstance(frames, bool):
                    counts[f"{item['id']}-{take['id']}"] = frames
        return counts
    except (json.JSONDecodeError, RecursionError):
        raise BundleError("the bundle's project.json is not valid JSON") from None
    except (AttributeError, KeyError, TypeError):
        raise BundleError("the bundle's project.json is not a project (its items or takes are malformed)") from None


def _check_takes(takes, counts: dict[str, int], frame_size: int | None, spec: TokenSpec | None = None) -> None:
    if not isinstance(takes, dict):
        raise BundleError("takes must map '<item id>-<take id>' to {'frames': array}")
    if len(takes) > (MAX_ENTRIES - 2) // 2:
        raise BundleError(f"a bundle holds at most {(MAX_ENTRIES - 2) // 2} takes, got {len(takes)}")
    for key, arrays in takes.items():
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise BundleError(f"take key {str(key)[:40]!r} is not '<item id>-<take id>'")
        if key not in counts:
            raise BundleError(f"take {key} is not a take of the project's recipe")
        if not isinstance(arrays, dict) or "frames" not in arrays:
            raise BundleError(f"take {key}: needs its 'frames'")
        unknown = sorted(map(str, set(arrays) - set(TAKE_ARRAYS)))
        if unknown:
            raise BundleError(f"take {key}: unknown array {unknown[0][:40]!r}; a take holds 'frames' and "
                              "optionally 'tokens' with 'context_lengths'")
        _check_frames(np.asarray(arrays["frames"]), f"take {key} frames", frame_size)
        n = np.asarray(arrays["frames"]).shape[0]
        if n != counts[key]:
            raise BundleError(f"take {key}: {n} frames, its segment has {counts[key]}")
        if ("tokens" in arrays) != ("context_lengths" in arrays):
            raise BundleError(f"take {key}: tokens and their context lengths come together, and one is missing")
        if "tokens" in arrays:
            check_take_tokens(arrays["tokens"], arrays["context_lengths"], n, spec, f"take {key}")


# -- writing -------------------------------------------------------------------------------
def write_bundle(path: str | Path, project_json: str, takes: dict[str, dict[str, np.ndarray]],
                 frame_size: int | None = None, tokens: TokenSpec | None = None) -> Path:
    """Write a bundle: the recipe `project_json` (as Project.to_json gives it) and, per take
    key `<item id>-<take id>`, {"frames": uint8 (T, H, W, 3)[, "tokens": int (clips, T', g, g),
    "context_lengths": int (clips,)]}, checked against `tokens` (the model's TokenSpec) when
    given. The file appears whole or not at all (written beside, then renamed). Returns the path."""
    if not isinstance(project_json, str):
        raise BundleError("the recipe must be the project's JSON text")
    recipe = project_json.encode("utf-8")
    if len(recipe) > MAX_PROJECT_BYTES:
        raise BundleError(f"the project JSON is over {MAX_PROJECT_BYTES // 2**20} MB")
    _check_takes(takes, _recipe_frame_counts(project_json), frame_size, tokens)
    entries = {PROJECT_ENTRY: recipe}
    manifest = {"format": BUNDLE_FORMAT, "project": PROJECT_ENTRY, "takes": {}}
    if tokens is not None and any("tokens" in arrays for arrays in takes.values()):
        manifest["tokenizer"] = tokens.tokenizer  # tokens mean something only to this tokenizer
    for key in sorted(takes):
        manifest["takes"][key] = {}
        for kind in sorted(takes[key]):
            a = np.asarray(takes[key][kind])
            manifest["takes"][key][kind] = list(a.shape)
            entries[f"takes/{key}.{kind}.npy"] = _npy_bytes(a)
    total = sum(map(len, entries.values()))
    if total > MAX_UNPACKED_BYTES or max(map(len, entries.values())) > MAX_ENTRY_BYTES:
        raise BundleError(f"the renders are too large for one bundle (over {MAX_UNPACKED_BYTES // 2**20} MB, "
                          f"or one take over {MAX_ENTRY_BYTES // 2**20} MB); save the recipe alone")
    # Built in memory (bounded above), then written by the studio's one atomic writer.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        def put(name: str, data: bytes):
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data, compresslevel=6)

        put(MANIFEST, json.dumps(manifest, indent=1).encode())
        for name, data in entries.items():
            put(name, data)
    return atomic_write(path, buffer.getvalue())


# -- reading -------------------------------------------------------------------------------
def _check_end_record(f, size: int) -> None:
    """Refuse too many entries from the zip's end record, before zipfile reads the central
    directory (it builds an object per entry, so a million-entry file would cost gigabytes)."""
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise BundleError("not a bundle: the file is not a zip archive")
    _, disk, _, n_disk, n_total, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    if disk != 0 or n_disk != n_total:
        raise BundleError("not a bundle: multi-part zip archives are not supported")
    if n_total == 0xFFFF or cd_size == 0xFFFFFFFF:
        raise BundleError("not a bundle: zip64 archives are not written by the studio")
    if n_total > MAX_ENTRIES:
        raise BundleError(f"the bundle has {n_total} entries; a bundle has at most {MAX_ENTRIES}")


def _read_entry(z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with z.open(info) as f:
        data = f.read(limit + 1)  # zipfile never returns more than the declared size; +1 catches a liar
    if len(data) != info.file_size:
        raise BundleError(f"the bundle entry {info.filename} is damaged (its size does not match)")
    return data


def read_bundle(path: str | Path, frame_size: int | None = None,
                tokens: TokenSpec | None = None) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """(project_json, takes) from a bundle; `frame_size` (the model's) also checks the frames'
    size, `tokens` (the model's TokenSpec) the takes' tokens. BundleError, with a plain
    message, for anything that is not a sound bundle."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BundleError(f"cannot read the bundle: {e.strerror or e}") from None
    if size > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is {size / 2**20:.0f} MB; at most {MAX_BUNDLE_BYTES // 2**20} MB")
    try:
        with open(path, "rb") as f:
            _check_end_record(f, size)
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                return _read(z, frame_size, tokens)
    except BundleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as e:
        raise BundleError(f"the bundle is damaged or not a zip archive ({e})") from None
    except OSError as e:
        raise BundleError(f"cannot read the bundle: {e.strerror or e}") from None
    except (zlib.error, struct.error, ValueError) as e:  # decoder failures: a damaged entry
        raise BundleError(f"the bundle is damaged ({type(e).__name__}: {e})") from None


def _read(z: zipfile.ZipFile, frame_size: int | None, spec: TokenSpec | None = None):
    infos = z.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BundleError(f"the bundle has {len(infos)} entries; a bundle has at most {MAX_ENTRIES}")
    by_name: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if name in by_name:
            raise BundleError(f"the bundle lists {name[:80]!r} twice")
        if info.flag_bits & 0x1:
            raise BundleError("the bundle is encrypted; bundles never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"the bundle entry {name[:80]!r} uses a compression the studio does not write")
        if info.file_size > MAX_ENTRY_BYTES:
            raise BundleError(f"the bundle entry {name[:80]!r} unpacks to {info.file_size / 2**20:.0f} MB; "
                              f"at most {MAX_ENTRY_BYTES // 2**20} MB")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 2**20:
            raise BundleError(f"the bundle entry {name[:80]!r} claims to unpack {info.file_size // max(info.compress_size, 1)}"
                              f"-fold; refusing it as a zip bomb")
        total += info.file_size
        by_name[name] = info
    if total > MAX_UNPACKED_BYTES:
        raise BundleError(f"the bundle unpacks to {total / 2**20:.0f} MB; at most {MAX_UNPACKED_BYTES // 2**20} MB")

    if MANIFEST not in by_name:
        raise BundleError(f"not a Phenaki Studio bundle: it has no {MANIFEST}")
    try:
        manifest = json.loads(_read_entry(z, by_name[MANIFEST], MAX_MANIFEST_BYTES)
                              if by_name[MANIFEST].file_size <= MAX_MANIFEST_BYTES else b"too large")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BundleError(f"the bundle's {MANIFEST} is not valid JSON (or is over "
                          f"{MAX_MANIFEST_BYTES // 2**20} MB)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a Phenaki Studio bundle (expected \"format\": \"{BUNDLE_FORMAT}\")")
    if manifest.get("project") != PROJECT_ENTRY or not isinstance(manifest.get("takes"), dict):
        raise BundleError(f"the bundle's {MANIFEST} is malformed (it needs \"project\" and \"takes\")")

    expected = {MANIFEST, PROJECT_ENTRY}
    for key, kinds in manifest["takes"].items():
        if not KEY_RE.fullmatch(key) or not isinstance(kinds, dict) or "frames" not in kinds \
                or not set(kinds) <= set(TAKE_ARRAYS):
            raise BundleError(f"the bundle's {MANIFEST} lists a malformed take {key[:40]!r}")
        expected |= {f"takes/{key}.{kind}.npy" for kind in kinds}
    unexpected = sorted(set(by_name) - expected)
    if unexpected:
        raise BundleError(f"the bundle holds entries it does not list: {', '.join(n[:80] for n in unexpected[:3])}")
    missing = sorted(expected - set(by_name))
    if missing:
        raise BundleError(f"the bundle is missing {', '.join(missing[:3])}")

    info = by_name[PROJECT_ENTRY]
    if info.file_size > MAX_PROJECT_BYTES:
        raise BundleError(f"the bundle's project.json is over {MAX_PROJECT_BYTES // 2**20} MB")
    try:
        project_json = _read_entry(z, info, MAX_PROJECT_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("the bundle's project.json is not UTF-8 text") from None
    counts = _recipe_frame_counts(project_json)
    for key, kinds in manifest["takes"].items():
        _check_declared(key, kinds, counts.get(key), spec, by_name)
    # Tokens of another tokenizer (a bundle made before the model was retrained, or with another
    # model) would draw other pictures: they are left unread, and those takes tokenized again.
    foreign = spec is not None and manifest.get("tokenizer") != spec.tokenizer

    takes: dict[str, dict[str, np.ndarray]] = {}
    for key, kinds in manifest["takes"].items():
        takes[key] = {}
        for kind, shape in kinds.items():
            if foreign and kind != "frames":
                continue
            where = f"take {key} {kind}"
            a = _npy_from(_read_entry(z, by_name[f"takes/{key}.{kind}.npy"], MAX_ENTRY_BYTES), where)
            if shape != list(a.shape):
                raise BundleError(f"{where}: the manifest says shape {shape}, the array is {list(a.shape)}")
            takes[key][kind] = a
    _check_takes(takes, counts, frame_size, spec)
    return project_json, takes


def is_bundle(path: str | Path) -> bool:
    """Whether a file looks like a bundle (a zip) rather than a project JSON; for choosing a reader."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
