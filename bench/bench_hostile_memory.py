"""Peak memory of the studio under the worst uploads it accepts, the hostile ones it refuses,
and the largest exports it allows: `python bench/bench_hostile_memory.py [--quick]`.

Each case runs in a fresh Python process, which imports the studio first and then does the
one thing; the figure is the peak of the process's resident memory while it does it (sampled
every millisecond by a thread) less its resident memory just before. So the figures add to
whatever the server already holds. The last row shows what the studio did before the header
checks, for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np
    import psutil
    from PIL import Image
    from app import bounds
    from app.project import ProjectError
    from phenaki_core.io import load_init_frames, write_video
    proc = psutil.Process()
    def rss():
        return proc.memory_info().rss / 2**20
    top = [0.0]
    def sample():
        while True:
            top[0] = max(top[0], rss())
            time.sleep(0.001)
    base = rss()
    threading.Thread(target=sample, daemon=True).start()
    outcome = "ok"
""")

UPLOAD = textwrap.dedent("""
    try:
        bounds.check_init_upload({path!r})
        frames = load_init_frames({path!r}, size=64, max_frames=5)
        outcome = f"accepted: {{len(frames)}} frame(s)"
    except ProjectError as e:
        outcome = "refused: " + str(e)[:60]
""")

BEFORE = textwrap.dedent("""
    try:
        frames = load_init_frames({path!r}, size=64, max_frames=5)  # no header check
        outcome = f"accepted: {{len(frames)}} frame(s) of {{frames.shape[1]}}x{{frames.shape[2]}}"
    except Exception as e:
        outcome = "failed: " + type(e).__name__
""")

EXPORT = textwrap.dedent("""
    frames = np.random.default_rng(0).integers(0, 256, ({frames}, 64, 64, 3), dtype=np.uint8)
    base = rss()  # the frames exist before an export (they are the takes)
    top[0] = base
    try:
        bounds.check_export({frames}, {size}, 64, {fmt!r})
        write_video(frames, {out!r}, fps=8, size={size})
        outcome = "exported"
    except ProjectError as e:
        outcome = "refused: " + str(e)[:60]
""")

END = textwrap.dedent("""
    time.sleep(0.01)
    print(json.dumps({"growth_mb": round(max(top[0], rss()) - base, 1), "base_mb": round(base, 1), "outcome": outcome}))
""")


def run(body: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "-c", PRELUDE + body + END], capture_output=True, text=True, env=env, check=False,
                         cwd=ROOT, timeout=1800)
    if out.returncode:
        return {"growth_mb": float("nan"), "base_mb": float("nan"), "outcome": f"crashed: {out.stderr[-200:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_files(d: Path, quick: bool) -> dict[str, Path]:
    import av
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tests" / "hostile"))
    from hostile_files import png_header, real_png

    files = {}
    side = 1024 if quick else 4096
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    img = np.stack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)),
                    np.full((side, side), 90, np.uint8)], -1)
    files[f"largest image allowed ({side}x{side} PNG)"] = d / "big.png"
    Image.fromarray(img).save(files[f"largest image allowed ({side}x{side} PNG)"])
    files[f"widest image allowed ({side}x{side // 8} PNG)"] = d / "wide.png"
    Image.fromarray(img[: side // 8]).save(files[f"widest image allowed ({side}x{side // 8} PNG)"])
    w, h = (1024, 576) if quick else (4096, 2304)
    path = d / "big.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(30):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), i * 8, np.uint8), format="rgb24")
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    files[f"largest video allowed ({w}x{h}, 30 frames)"] = path
    files["hostile: 1x60000 PNG (312 bytes)"] = d / "tall.png"
    files["hostile: 1x60000 PNG (312 bytes)"].write_bytes(real_png(1, 60000))
    files["hostile: 20000x20000 PNG header"] = d / "bomb.png"
    files["hostile: 20000x20000 PNG header"].write_bytes(png_header(20000, 20000))
    files["hostile: 4097x4097 PNG header"] = d / "side.png"
    files["hostile: 4097x4097 PNG header"].write_bytes(png_header(4097, 4097))
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller files and exports (a smoke run)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from app import bounds

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = make_files(d, args.quick)
        for name, path in files.items():
            rows.append((name, run(UPLOAD.format(path=str(path)))))
        def fit(fmt):  # the most frames at 1024 px the budget allows
            return bounds.EXPORT_BUDGET_BYTES // (1024 * 1024 * 3 * bounds.EXPORT_COPIES[fmt])
        budget_frames = fit("mp4")
        exports = [("mp4", fit("mp4"), 1024), ("gif", fit("gif"), 1024), ("npy", 4800, "None"),
                   ("mp4", fit("mp4") * 4, 1024)]
        if args.quick:
            exports = [("mp4", 16, 1024), ("gif", 16, 1024), ("npy", 480, "None"), ("mp4", budget_frames * 4, 1024)]
        for fmt, n, size in exports:
            what = "largest export allowed" if fmt == "npy" or n <= fit(fmt) else "export over the budget"
            name = f"{what}: {n} frames at {size if size != 'None' else 64} px, {fmt}"
            rows.append((name, run(EXPORT.format(frames=n, size=size, fmt=fmt, out=str(d / f"x{n}.{fmt}")))))
        rows.append(("before the checks: 1x60000 PNG (312 bytes)",
                     run(BEFORE.format(path=str(files["hostile: 1x60000 PNG (312 bytes)"])))))
    print(f"budget: uploads up to {bounds.MAX_UPLOAD_BYTES // 2**20} MB, images up to {bounds.MAX_IMAGE_SIDE} px a side, "
          f"exports up to {bounds.EXPORT_BUDGET_BYTES // 2**20} MB of frames (writer copies counted)")
    print("| case | peak RSS growth (MB) | outcome |\n|---|---:|---|")
    for name, r in rows:
        print(f"| {name} | {r['growth_mb']:.0f} | {r['outcome']} |")
    print(f"(process after imports: {rows[0][1]['base_mb']:.0f} MB)")
    if args.json:
        Path(args.json).write_text(json.dumps([{"case": n, **r} for n, r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
