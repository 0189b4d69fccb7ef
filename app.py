"""Phenaki Studio: `python app.py [--model DIR] [--port 7860] [--host 127.0.0.1] [--smoke]`.

Serves the storyboard studio on the local machine only (never a public share link).
Without a usable model the page says so and generates nothing. `--smoke` renders one clip
through the studio's own code and exits, so CI can prove the launch line without a browser.
"""
import argparse
import errno
import os
import socket
import sys
import tempfile
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SMOKE_PROMPT = "a red circle moves right"


def say(message: str) -> None:
    print(f"phenaki studio: {message}", file=sys.stderr)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Phenaki Studio: a storyboard for text-to-video")
    ap.add_argument("--model", help="a Phenaki model folder (default: the shipped Shapes World model)")
    ap.add_argument("--host", help="address to bind (default: $GRADIO_SERVER_NAME, else 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    ap.add_argument("--device", default="auto", help="auto (a CUDA GPU when there is one), cpu, cuda or cuda:N")
    ap.add_argument("--dtype", default="auto", help="auto (bfloat16 on a GPU that has it, else float32), float32, bfloat16")
    ap.add_argument("--projects-dir", default=os.environ.get("PHENAKI_STUDIO_PROJECTS", "outputs/projects"),
                    help="where each browser session's project is autosaved")
    ap.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "phenaki-studio"),
                    help="per-session output files (clips, exports)")
    ap.add_argument("--concurrency", type=int, default=1, help="renders running at once (default 1)")
    ap.add_argument("--smoke", action="store_true",
                    help=f"render one clip ({SMOKE_PROMPT!r}) through the studio's code, write it, and exit")
    args = ap.parse_args(argv)
    # Gradio's own variables, as Gradio documents them; a flag wins over them.
    args.host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if args.port is None:
        env_port = os.environ.get("GRADIO_SERVER_PORT", "7860")
        if not env_port.isdigit():
            ap.error(f"GRADIO_SERVER_PORT must be a port number, got {env_port!r}")
        args.port = int(env_port)
    if not 1 <= args.port <= 65535:
        ap.error(f"the port must be between 1 and 65535, got {args.port}")
    return args


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, or None. SO_REUSEADDR as uvicorn sets it,
    so a port that is merely closing (TIME_WAIT) is not reported busy."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return f"cannot bind {host!r}: {e.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use; stop what runs there or pick another port "
                        "with --port N (or GRADIO_SERVER_PORT=N)")
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


def missing_model_page(folder: Path, error: str):
    import html

    import gradio as gr

    # Markdown renders HTML: the error and the folder name come from outside, so escape them.
    error, folder = html.escape(error), html.escape(str(folder)).replace("`", "'")
    with gr.Blocks(title="Phenaki Studio: no model", analytics_enabled=False) as demo:
        gr.Markdown(
            f"# Phenaki Studio\n**No model to generate with.** {error}\n\n"
            f"`{folder}` is not a usable Phenaki model folder (a `model_index.json` with safetensors weights "
            "beside it). The default Shapes World model ships in a clone of the repository under "
            "`assets/phenaki-shapes-64`; start the studio from the clone, or with "
            "`python app.py --model PATH/TO/A/PHENAKI/FOLDER`. This page generates nothing until then.",
            elem_id="no-model")
    return demo


def smoke(pipe, args, model: str) -> int:
    """One clip through the studio's own path: a session's project, its renderer, its MP4 export."""
    from app.render import Studio, new_session_id
    from app.ui import build_demo
    from phenaki_core.story import Segment

    build_demo(pipe, projects_dir=args.projects_dir, work_dir=args.work_dir, model=model)  # the page builds
    st = Studio(pipe, new_session_id(), Path(args.projects_dir), Path(args.work_dir), model)
    st.project.add(Segment(SMOKE_PROMPT, pipe.clip_frames, seed=1))
    st.render()
    video, _sidecar = st.export("mp4")
    print(f"phenaki studio: smoke test passed: {SMOKE_PROMPT!r} rendered to {video}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.smoke and (problem := port_problem(args.host, args.port)):
        say(problem)
        return 1

    from phenaki_core.pipelines.default import DEFAULT_MODEL, load_pipeline
    from phenaki_core.runtime import keep_freed_memory, resolve_device, resolve_dtype

    try:
        device = resolve_device(args.device)
        dtype = resolve_dtype(args.dtype, device)
    except ValueError as e:  # e.g. --device cuda on a machine without a GPU: before any work
        say(str(e))
        return 2
    keep_freed_memory()
    folder = Path(args.model) if args.model else DEFAULT_MODEL
    try:
        pipe = load_pipeline(folder, device=device, dtype=dtype)
    except (OSError, ValueError) as e:  # missing folder, corrupt or unsafe weights: a page that says so
        say(f"no usable model ({e}); pass --model PATH/TO/A/PHENAKI/FOLDER")
        if args.smoke:
            return 1
        demo = missing_model_page(folder, str(e))
        launch_extra = {}
    else:
        if args.smoke:
            return smoke(pipe, args, folder.name)
        from app.bounds import launch_kwargs
        from app.ui import build_demo

        demo = build_demo(pipe, projects_dir=args.projects_dir, work_dir=args.work_dir, model=folder.name)
        launch_extra = launch_kwargs(args.host)  # the upload limit and the Host header check
    try:
        demo.queue(default_concurrency_limit=args.concurrency).launch(
            server_name=args.host, server_port=args.port, share=False, show_error=False, allowed_paths=[],
            footer_links=["api"], **launch_extra)
    except OSError as e:  # the port was taken between the check and the launch
        say(f"cannot serve on {args.host}:{args.port}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
