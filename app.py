"""Phenaki Studio: `python app.py [--model DIR] [--port 7860] [--host 127.0.0.1]`.

Serves the storyboard studio on the local machine only (never a public share link).
Without a trained model the page says so and generates nothing.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402


def missing_model_page(folder: Path, error: str) -> gr.Blocks:
    with gr.Blocks(title="Phenaki Studio: no model", analytics_enabled=False) as demo:
        gr.Markdown(
            f"# Phenaki Studio\n**No model to generate with.** {error}\n\n"
            f"The default Shapes World model (`{folder}`) has not been trained yet, or `--model` points to a "
            "folder without `model_index.json`. Train it (see the README), or start the studio with "
            "`python app.py --model PATH/TO/A/PHENAKI/FOLDER`. This page generates nothing until then.",
            elem_id="no-model")
    return demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Phenaki Studio: a storyboard for text-to-video")
    ap.add_argument("--model", help="a Phenaki model folder (default: the shipped Shapes World model)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--projects-dir", default=os.environ.get("PHENAKI_STUDIO_PROJECTS", "outputs/projects"),
                    help="where each browser session's project is autosaved")
    ap.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "phenaki-studio"),
                    help="per-session output files (clips, exports)")
    ap.add_argument("--concurrency", type=int, default=1, help="renders running at once (default 1)")
    args = ap.parse_args(argv)

    from phenaki_core.pipelines.default import DEFAULT_MODEL, load_pipeline
    from phenaki_core.runtime import keep_freed_memory

    keep_freed_memory()
    folder = Path(args.model) if args.model else DEFAULT_MODEL
    try:
        pipe = load_pipeline(folder, device=args.device)
    except FileNotFoundError as e:
        print(f"phenaki studio: {e}", file=sys.stderr)
        demo = missing_model_page(folder, str(e))
    else:
        from app.ui import build_demo

        demo = build_demo(pipe, projects_dir=args.projects_dir, work_dir=args.work_dir, model=folder.name)
    demo.queue(default_concurrency_limit=args.concurrency).launch(
        server_name=args.host, server_port=args.port, share=False, show_error=False, allowed_paths=[],
        footer_links=["api"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
