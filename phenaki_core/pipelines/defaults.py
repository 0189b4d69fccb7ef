"""The pipeline's sampling defaults, each stated once. Light (no torch): the CLI shows them
in --help without loading anything."""

# Classifier-free guidance unless a caller says otherwise: 2 scored best on the shipped
# model (its card has the sweep); stronger guidance pushed samples off the tokenizer's manifold.
DEFAULT_GUIDANCE = 2.0
DEFAULT_STEPS = 12
# A continuation re-encodes this many of the last frames as its frozen prefix (the paper's K).
DEFAULT_CONTEXT_FRAMES = 5
