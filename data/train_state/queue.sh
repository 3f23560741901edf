#!/usr/bin/env bash
# training queue for issue 5 (resumable; each step resumes from build/runs/NAME/state.pt)
cd /work/main
export XAI_DATA_DIR=/work/shared/data PYTHONUNBUFFERED=1 XAI_QUIET=0
for job in "gcm_cifar10" "cnn_cifar10" "gcm_digits" "gcm_cifar10_clip" "gcm_cifar10 --validation 5000"; do
  name=${job%% *}; tag=$(echo "$job" | tr ' ' '_' | tr -d '-')
  if [ -f "build/done_$tag" ]; then continue; fi
  .venv/bin/python -m xai_helpers.train $job --compile > "build/logs/$tag.log" 2>&1 && touch "build/done_$tag"
done
