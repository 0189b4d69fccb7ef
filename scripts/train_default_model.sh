#!/usr/bin/env bash
# Train (or continue training) the shipped default model on Shapes World, then export it
# to assets/ and evaluate it. Every stage is resumable: run it again and it picks up where
# it stopped. On a GPU box, give the GPU big batches and processes rendering ahead of it,
# as the H200 run of the shipped transformer did (see the model card):
#   WORKERS=12 BATCH_VIDEOS=256 BATCH_IMAGES=64 LR=1e-3 ./scripts/train_default_model.sh
#   TOKENIZER_MINUTES / TRANSFORMER_MINUTES   wall-time budgets for this invocation
#   RUNS                                      run folder (default runs/)
#   WORKERS, BATCH_VIDEOS, BATCH_IMAGES, LR   the transformer stage's data and optimizer
#   STILL_FRACTION                            images also trained as still clips (shipped: 0.5)
#   STORY_FRACTION, CONTINUATION_FRACTION     story clips among the videos, and plain clips with
#                                             a frozen prefix (shipped: 0.35 each; see the card)
#   TOKENIZER                                 the tokenizer the transformer trains on, e.g. one
#                                             retrained with its encoder (new tokens: start a
#                                             fresh run folder for it; the shipped transformer's
#                                             code tables are carried over to them)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
MODEL=assets/phenaki-shapes-64
TOKENIZER_MINUTES=${TOKENIZER_MINUTES:-0}
TRANSFORMER_MINUTES=${TRANSFORMER_MINUTES:-60}
WORKERS=${WORKERS:-0}; BATCH_VIDEOS=${BATCH_VIDEOS:-24}; BATCH_IMAGES=${BATCH_IMAGES:-12}; LR=${LR:-1e-4}
STILL_FRACTION=${STILL_FRACTION:-0.5}
STORY_FRACTION=${STORY_FRACTION:-0.35}; CONTINUATION_FRACTION=${CONTINUATION_FRACTION:-0.35}

# The tokenizer stage trains the decoder alone (--decoder-only): the encoder, and so the
# tokens the transformer was trained on, stay fixed, and a better decoder improves every
# sample of the existing transformer at once. Drop --decoder-only (and retrain the
# transformer) to change the encoder.
if [ "$TOKENIZER_MINUTES" != 0 ]; then
  TOK_INIT=()
  if [ ! -d "$RUNS/tok/state" ] && [ -d "$MODEL/vqvae" ]; then TOK_INIT=(--init "$MODEL/vqvae"); fi
  phenaki train-tokenizer --out "$RUNS/tok" --resume "${TOK_INIT[@]}" --decoder-only \
    --minutes "$TOKENIZER_MINUTES" --lr 5e-4 --lr-decay --eval-every 400 --adv-start 1000000 --batch-images 12
fi

# The transformer trains on the frozen tokenizer. A new machine has no runs/: it then
# starts from the shipped model's weights (--init), so training spans machines.
# A tokenizer named by the caller must exist; unnamed, this run's own, else the shipped one.
if [ -n "${TOKENIZER:-}" ]; then
  [ -d "$TOKENIZER" ] || { echo "TOKENIZER=$TOKENIZER is not a folder" >&2; exit 2; }
elif [ -d "$RUNS/tok/cvivit" ]; then TOKENIZER="$RUNS/tok/cvivit"
else TOKENIZER="$MODEL/vqvae"; fi
INIT=()
if [ ! -d "$RUNS/mg/state" ] && [ -d "$MODEL/transformer" ]; then
  INIT=(--init "$MODEL/transformer")
  if [ "$TOKENIZER" != "$MODEL/vqvae" ]; then INIT+=(--init-tokenizer "$MODEL/vqvae"); fi
fi
phenaki train-transformer --tokenizer "$TOKENIZER" --out "$RUNS/mg" --resume "${INIT[@]}" \
  --minutes "$TRANSFORMER_MINUTES" --lr "$LR" --lr-decay --eval-every 1000 --workers "$WORKERS" \
  --batch-videos "$BATCH_VIDEOS" --batch-images "$BATCH_IMAGES" --still-fraction "$STILL_FRACTION" \
  --story-fraction "$STORY_FRACTION" --continuation-fraction "$CONTINUATION_FRACTION" \
  --config '{"width": 256, "depth": 4, "heads": 4}'

# Keep the model card and the tuned sampling settings (the scheduler's, chosen by the card's sweeps).
rm -rf "$MODEL.new" && cp -r "$RUNS/mg/pipeline" "$MODEL.new" && cp "$MODEL/README.md" "$MODEL.new/" \
  && cp "$MODEL/scheduler/scheduler_config.json" "$MODEL.new/scheduler/"
rm -rf "$MODEL" && mv "$MODEL.new" "$MODEL"
phenaki evaluate --model "$MODEL" --out "$MODEL/eval" --n 64
