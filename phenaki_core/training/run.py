"""One training run under accelerate, for both trainers: the accelerator, the checkpoint that
resumes exactly, the decisions every process must take together, logs and trackers.

The checkpoint is accelerate's own (`save_state` / `load_state`) in `RUN/state/`: model,
optimizer, learning-rate schedule, gradient scaler, the random states of every process,
and what is registered for checkpointing: the EMA and the run's position (its step; every
process's data stream is a function of the step, batches.py, so the position is the step).
"""
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch


class Position:
    """Optimizer steps taken; the data streams restart at the batch after them."""

    def __init__(self):
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict):
        self.step = int(state["step"])


def make_accelerator(args):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    # The schedule steps once per optimizer step, however many processes: the learning rate
    # follows the step count the logs and --steps speak of.
    config = ProjectConfiguration(project_dir=str(args.out), logging_dir=str(Path(args.out) / "tracker"))
    # accelerate's own multi-process CPU launch goes through MPI; with torchrun's launcher
    # (`accelerate launch --multi_gpu`) a machine without an accelerator trains on its CPU
    # processes, over gloo, only if told it is a CPU run.
    return Accelerator(cpu=not torch.accelerator.is_available(), mixed_precision=args.mixed_precision,
                       gradient_accumulation_steps=args.grad_accum,
                       log_with=None if args.report_to == "none" else args.report_to, project_config=config,
                       step_scheduler_with_optimizer=False)


class Run:
    """A run folder: `state/` (the checkpoint), `log.jsonl` and `loss.png`, and a tracker."""

    def __init__(self, acc, args, name: str, ema):
        self.acc, self.dir = acc, Path(args.out)
        self.every, self.last = 60 * args.checkpoint_minutes, time.monotonic()
        if acc.is_main_process:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.position = Position()
        acc.register_for_checkpointing(self.position, ema)  # in this order on every run: files are numbered
        if args.report_to != "none":
            try:
                config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
                acc.init_trackers(name, config=config)
            except (ImportError, ModuleNotFoundError, ValueError) as e:
                raise SystemExit(f"--report-to {args.report_to}: {e}") from e
        self.tracking = args.report_to != "none"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def step(self) -> int:
        return self.position.step

    def resume(self) -> int:
        """Load the run folder's checkpoint, if there is one; the step to go on from."""
        if self.state.is_dir():
            self.acc.load_state(str(self.state))
            self.acc.print(f"resumed at step {self.step}")
        elif (self.dir / "state.pt").exists():
            raise SystemExit(f"{self.dir / 'state.pt'} is a checkpoint of an older trainer, which cannot resume "
                             f"exactly: start a new run folder with --init on the model this one exported")
        return self.step

    def save(self):
        """Write the checkpoint next to the last one, then swap it in: a run killed while
        saving leaves its last whole checkpoint. Every process calls this (each saves its
        random states)."""
        tmp, old = self.dir / "state.tmp", self.dir / "state.old"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.acc.wait_for_everyone()
        self.acc.save_state(str(tmp))
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            shutil.rmtree(old, ignore_errors=True)
            if self.state.exists():
                os.replace(self.state, old)
            os.replace(tmp, self.state)
            shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        self.last = time.monotonic()

    def agree(self, flag: bool) -> bool:
        """The main process's `flag`, on every process: the clock says when to save or stop,
        and processes whose clocks disagree would wait on each other forever."""
        if self.acc.num_processes == 1:
            return flag
        from accelerate.utils import broadcast

        return bool(broadcast(torch.tensor([float(flag)], device=self.acc.device)).item())

    def save_due(self) -> bool:
        return self.agree(time.monotonic() - self.last >= self.every)

    def log(self, record: dict):
        if self.acc.is_main_process:
            with open(self.dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.tracking:
            self.acc.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def plot(self, keys: list[str]):
        """Loss curves as PNG, from the log (smoothed)."""
        if not self.acc.is_main_process or not (self.dir / "log.jsonl").exists():
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [json.loads(line) for line in (self.dir / "log.jsonl").read_text().splitlines()]
        keys = [k for k in keys if any(k in r for r in rows)]  # no empty panels (no adversarial loss yet, say)
        if not keys:
            return
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
        for ax, key in zip(axes[0], keys):
            steps, values = zip(*[(r["step"], r[key]) for r in rows if key in r])
            ax.plot(steps, values, lw=0.6, alpha=0.4)
            k = max(1, len(values) // 50)
            smooth = [sum(values[max(0, i - k): i + 1]) / len(values[max(0, i - k): i + 1]) for i in range(len(values))]
            ax.plot(steps, smooth, lw=1.5)
            ax.set_title(key)
            ax.set_xlabel("step")
            if min(values) > 0 and max(values) > 10 * min(values):  # losses: log; rates and PSNR: linear
                ax.set_yscale("log")
        fig.tight_layout()
        fig.savefig(self.dir / "loss.png", dpi=90)
        plt.close(fig)

    def check_replicas(self, model):
        """Every process's weights, hashed, in `replicas.json`: after synchronised steps they
        are one model. A mismatch is reported, not hidden."""
        from accelerate.utils import gather_object

        digest = weights_digest(self.acc.unwrap_model(model))
        digests = gather_object([digest])
        if self.acc.is_main_process:
            same = len(set(digests)) == 1
            (self.dir / "replicas.json").write_text(json.dumps({"processes": len(digests), "digests": digests,
                                                                "identical": same}, indent=1) + "\n")
            if not same:
                self.acc.print(f"warning: the {len(digests)} processes hold different weights: {digests}")

    def end(self):
        if self.tracking:
            self.acc.end_training()


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
