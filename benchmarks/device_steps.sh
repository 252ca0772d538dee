#!/usr/bin/env bash
# Issue 7, item 5 on a GPU machine: how many SFT steps the tiny recipe needs per subtask (benchmarks/steps_to_learn.py).
# Here first: `.venv/bin/python benchmarks/device_pack.py` (after the tiny profile ran) makes .devpack/ (~56 MiB).
# Then through the device tool: command "bash benchmarks/device_steps.sh", carry [".devpack"], timeout_s 560.
# It installs the packed wheels, puts the packed dataset and tiny model under outputs/, and writes gpu.csv,
# versions.txt, log.txt and curve.json to $OUT. Overrides: NAME, STEPS_ARGS (steps_to_learn.py key=value pairs),
# PY (interpreter), SKIP_WHEELS=1 (an environment that already has the pins), FRESH_CLIPS=N (first make N fresh
# object scenes there with benchmarks/fresh_scenes.py, all cores, as dataset run tiny-fresh: add
# dataset_run=tiny-fresh to STEPS_ARGS; the scenes are made on the machine since packed they would pass 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-outputs/device_steps}
mkdir -p "$OUT" outputs
[ -d .devpack/outputs ] || { echo ".devpack/outputs missing: run benchmarks/device_pack.py first" >&2; exit 2; }
if [ -z "${SKIP_WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devpack/whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# -n: never overwrite a dataset run that is already there (its frames may be links into 01_curation's)
cp -an .devpack/outputs/. outputs/
for g in outputs/03_dataset/*/*.jsonl.gz; do   # packed gzipped (device_pack.py); an existing file is kept
  [ -e "${g%.gz}" ] || gunzip -c "$g" > "${g%.gz}"
  rm -f "$g"
done
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>/dev/null || echo "no nvidia-smi" > "$OUT/gpu.csv"
"$PY" -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())" | tee "$OUT/versions.txt"
if [ -n "${FRESH_CLIPS:-}" ]; then
  "$PY" benchmarks/fresh_scenes.py fresh --clips "$FRESH_CLIPS" --workers "$(nproc)" 2>&1 | tail -1 | tee "$OUT/fresh.txt"
fi
# 20000 steps is more than ~6 minutes can run: budget_s stops training at the first evaluation after 360 s of SFT
"$PY" benchmarks/steps_to_learn.py "${NAME:-gpu}" ${STEPS_ARGS:-max_steps=20000 eval_every=1000 budget_s=360 dataloader_workers=4} out="$OUT" 2>&1 | tee "$OUT/log.txt"
