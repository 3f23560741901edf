#!/usr/bin/env bash
# Training queue of issues 5 and 6 on a CPU (resumable). Restores the committed states of
# unfinished runs into build/runs/ first; skips a run whose result is already committed.
#   setsid nohup bash data/train_state/queue.sh > build/logs/queue.log 2>&1 &
cd "$(dirname "$0")/../.."
export XAI_DATA_DIR=${XAI_DATA_DIR:-$(cd .. && pwd)/shared/data} PYTHONUNBUFFERED=1 XAI_QUIET=0
mkdir -p build/logs
for f in data/train_state/*.state.pt; do
  [ -e "$f" ] || continue
  run=$(basename "$f" .state.pt)
  [ -f "build/runs/$run/state.pt" ] || { mkdir -p "build/runs/$run"; cp "$f" "build/runs/$run/state.pt"; }
done
done_already() {  # $1 = name, $2 = "val" for the validation run
  if [ "$2" = val ]; then [ -f "data/results/validation/$1.json" ]; return; fi
  .venv/bin/python -c "import json,sys; sys.exit(0 if not json.load(open('data/checkpoints/$1.json'))['quick'] else 1)" 2>/dev/null
}
while read -r name val flags; do
  done_already "$name" "$val" && continue
  extra=$([ "$val" = val ] && echo "--validation 5000")
  .venv/bin/python -m xai_helpers.train "$name" $extra $flags > "build/logs/$name$val.log" 2>&1 || exit 1
done <<'JOBS'
gcm_cifar10 - --compile --bf16
cnn_cifar10 - --compile
vgg_cifar10 - --compile --bf16
gcm_digits - --compile --bf16
gcm_cifar10_clip - --compile --bf16
gcm_cifar10 val --compile --bf16
JOBS
