"""Score sampling settings of a model on Shapes World prompts, seed by seed.

    python scripts/sweep_sampling.py --seeds 1,2,3 --split train \
        --settings '[{}, {"refine_steps": 0}, {"refine_guidance": 1.0}, {"guidance": 3}]'

Each setting overrides the model's scheduler config (refine_steps, refine_fraction,
refine_guidance, choice_temperature, sample_temperature) and may set "guidance" and
"steps". Prompts are those of `phenaki evaluate` for the seed (split train = its seen set,
heldout = its held-out set, outlined = its outlined set); keep the report's seed 0 out of a
sweep that picks defaults.
"""
import argparse
import json
import time

import numpy as np

from phenaki_core import MaskGitScheduler
from phenaki_core.eval.checker import check_clip, summarize
from phenaki_core.eval.evaluate import clip_prompts, generate
from phenaki_core.pipelines import DEFAULT_GUIDANCE, load_pipeline
from phenaki_core.runtime import keep_freed_memory


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    ap.add_argument("--settings", default="[{}]", help="a JSON list of settings; {} is the model as it ships")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--split", default="train", choices=["train", "heldout", "outlined"])
    ap.add_argument("--n", type=int, default=64, help="clips per seed")
    args = ap.parse_args()
    keep_freed_memory()
    pipe = load_pipeline(args.model)
    shipped = pipe.scheduler
    seeds = [int(s) for s in args.seeds.split(",")]
    for setting in json.loads(args.settings):
        overrides = {k: v for k, v in setting.items() if k not in ("guidance", "steps")}
        pipe.scheduler = MaskGitScheduler.from_config(shipped.config, **overrides)
        t, scores = time.perf_counter(), []
        for seed in seeds:
            stream = {"train": 0, "heldout": 1, "outlined": 2}[args.split]  # evaluate's streams
            prompts = clip_prompts(np.random.default_rng([seed, stream]), args.n,
                                   "heldout" if args.split == "heldout" else "train", outlined=args.split == "outlined")
            clips = generate(pipe, prompts, setting.get("steps", 12), setting.get("guidance", DEFAULT_GUIDANCE), seed)
            scores.append(summarize([check_clip(c, p) for c, p in zip(clips, prompts)]))
        per_seed = " ".join(f"{s['adherence']:.1%}" for s in scores)
        print(f"{json.dumps(setting):60s} {args.split}: {np.mean([s['adherence'] for s in scores]):.1%} "
              f"(seeds {per_seed}; shape {np.mean([s['shape'] for s in scores]):.1%}, "
              f"style {np.mean([s['style'] for s in scores]):.1%}, motion {np.mean([s['motion'] for s in scores]):.1%}) {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
