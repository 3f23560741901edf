#!/usr/bin/env bash
# Training queue for long runs on a CPU, resumable across sessions (a line NAME FLAGS per run
# below the JOBS line; nothing is queued now). Restores the committed states of unfinished
# runs into build/runs/ and the cached teacher predictions into build/cache/ first; skips a run
# whose full-mode checkpoint is already in build/checkpoints/ (where training writes).
#   setsid nohup bash data/train_state/queue.sh > build/logs/queue.log 2>&1 &
cd "$(dirname "$0")/../.."
export XAI_DATA_DIR=${XAI_DATA_DIR:-$(cd .. && pwd)/shared/data} PYTHONUNBUFFERED=1 XAI_QUIET=0
mkdir -p build/logs build/cache
for f in data/train_state/*.state.pt; do
  [ -e "$f" ] || continue
  run=$(basename "$f" .state.pt)
  [ -f "build/runs/$run/state.pt" ] || { mkdir -p "build/runs/$run"; cp "$f" "build/runs/$run/state.pt"; }
done
for f in data/train_state/teacher-*.pt; do
  [ -e "$f" ] && { [ -f "build/cache/$(basename "$f")" ] || cp "$f" build/cache/; }
done
done_already() {  # $1 = name
  .venv/bin/python -c "import json,sys; sys.exit(0 if not json.load(open('build/checkpoints/$1.json'))['quick'] else 1)" 2>/dev/null
}
while read -r name flags; do
  done_already "$name" && continue
  .venv/bin/python -m xai_helpers.train "$name" $flags > "build/logs/$name.log" 2>&1 || exit 1
done <<'JOBS'
JOBS
