"""The command-line options both trainers share. Plain argparse, no torch: `phenaki --help`
builds every parser, and should not wait for torch to load to print it."""
import argparse


def at_least(low: int):
    """An argparse type: an int no smaller than `low`. The data streams build every batch around its
    videos, so a batch needs one; images may be none (video-only training, Table 2)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def add_run_arguments(p, batch_videos: int, batch_images: int):
    """The options both trainers share: the run folder, the budget, the data, the optimizer."""
    p.add_argument("--out", required=True, help="run folder: checkpoints, logs, the exported model")
    p.add_argument("--resume", action="store_true",
                   help="continue from the run folder's checkpoint, exactly where it stopped (weights, optimizer, EMA, "
                        "learning-rate schedule, random states and data position)")
    p.add_argument("--steps", type=int, default=None,
                   help="stop at this step; --lr-decay then follows the steps, so a resumed run keeps the same curve")
    p.add_argument("--minutes", type=float, default=None, help="stop after this wall time")
    p.add_argument("--videos", default=None, help="folder of captioned videos (default: Shapes World)")
    p.add_argument("--images", default=None, help="folder of captioned images")
    p.add_argument("--fps", type=float, default=8)
    p.add_argument("--frames", type=int, default=11)
    p.add_argument("--batch-videos", type=at_least(1), default=batch_videos, help="videos a batch, per process")
    p.add_argument("--batch-images", type=at_least(0), default=batch_images, help="images a batch, per process")
    p.add_argument("--grad-accum", type=at_least(1), default=1,
                   help="batches whose gradients add up to one optimizer step (a larger batch in the same memory)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", action="store_true",
                   help="cosine-decay the learning rate to 10%% over --steps (or, without --steps, over this run's --minutes)")
    p.add_argument("--config", default=None, help="JSON of model config overrides")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--checkpoint-minutes", type=float, default=3)
    p.add_argument("--mixed-precision", default="bf16", choices=["no", "bf16", "fp16"])
    p.add_argument("--report-to", default="none", choices=["none", "tensorboard", "wandb", "mlflow"],
                   help="also log to this experiment tracker, through accelerate (the JSONL log and PNG curves "
                        "in the run folder are always written)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0,
                   help="processes preparing batches ahead of training (a GPU needs several)")


def run_as_script(add_arguments, main, description: str):
    """`python -m phenaki_core.training.train_x ...` (what `accelerate launch -m` runs): the
    trainer's own parser, the same options as its `phenaki` subcommand."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    main(parser.parse_args())
