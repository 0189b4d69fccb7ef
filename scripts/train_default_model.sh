#!/usr/bin/env bash
# Train (or continue training) the shipped default model on Shapes World, then export it
# to assets/ and evaluate it. Every stage is resumable: run it again and it picks up where
# it stopped. On a GPU box: `MIXED=bf16 ./scripts/train_default_model.sh` under
# `accelerate launch` works the same (see the model card).
#   TOKENIZER_MINUTES / TRANSFORMER_MINUTES   wall-time budgets for this invocation
#   RUNS                                      run folder (default runs/)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
MODEL=assets/phenaki-shapes-64
TOKENIZER_MINUTES=${TOKENIZER_MINUTES:-0}
TRANSFORMER_MINUTES=${TRANSFORMER_MINUTES:-60}

# The shipped model's C-ViViT: FSQ (8,8,8,6,5) = 15,360 codes and one refine block.
# (8,8,4,4) = 1,024 codes could not hold a square's edges: its reconstructions failed the
# checker on 1 square in 3 however long it trained.
TOKENIZER_CONFIG='{"fsq_levels": [8, 8, 8, 6, 5], "refine_blocks": 1}'
if [ "$TOKENIZER_MINUTES" != 0 ]; then
  TOK_INIT=()
  if [ ! -f "$RUNS/tok/state.pt" ] && [ -d "$MODEL/vqvae" ]; then TOK_INIT=(--init "$MODEL/vqvae"); fi
  phenaki train-tokenizer --out "$RUNS/tok" --resume "${TOK_INIT[@]}" --config "$TOKENIZER_CONFIG" \
    --minutes "$TOKENIZER_MINUTES" --lr 5e-4 --lr-decay --eval-every 400 --adv-start 1000000 --batch-images 12
fi

# The transformer trains on the frozen tokenizer. A new machine has no runs/: it then
# starts from the shipped model's weights (--init), so training spans sessions.
TOKENIZER="$RUNS/tok/cvivit"
INIT=()
if [ ! -d "$TOKENIZER" ]; then TOKENIZER="$MODEL/vqvae"; fi
if [ ! -f "$RUNS/mg/state.pt" ] && [ -d "$MODEL/transformer" ]; then INIT=(--init "$MODEL/transformer"); fi
phenaki train-transformer --tokenizer "$TOKENIZER" --out "$RUNS/mg" --resume "${INIT[@]}" \
  --minutes "$TRANSFORMER_MINUTES" --lr 7e-4 --lr-decay --eval-every 1000 --batch-videos 24 --batch-images 6 \
  --config '{"width": 256, "depth": 4, "heads": 4}'

rm -rf "$MODEL.new" && cp -r "$RUNS/mg/pipeline" "$MODEL.new"
rm -rf "$MODEL" && mv "$MODEL.new" "$MODEL"
phenaki evaluate --model "$MODEL" --out "$MODEL/eval" --n 64
