#!/usr/bin/env bash
# Train every shipped policy adapter with the project's own CLI, seeded, into data/adapters/:
#   the six Personalized Soups sides, Prompted-MORL, the RLHF baseline, MORLAIF, the multitask SFT baseline.
#
#   JOBS=2 bash scripts/make_artifacts.sh       # what we did: 2 runs at a time on the 2-core CPU (see README)
#   JOBS=10 bash scripts/make_artifacts.sh      # all at once, e.g. on a GPU (CUDA is used when present)
#   ONLY=P2A,P2B bash scripts/make_artifacts.sh # some of them
#
# Every run writes <out>/adapter (PEFT, safetensors) + adapter.provenance.json + metrics.csv and
# checkpoints every 5 iterations; rerunning this script resumes unfinished runs (--resume) and skips
# finished ones (the CLI would refuse them anyway: --resume without a checkpoint never starts over on a
# finished adapter). To retrain a finished one, move its folder away first, or run its command with --overwrite.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${LAB:-.venv/bin/rlphf-lab}
OUT=${OUT:-data/adapters}
JOBS=${JOBS:-1}
LOGS=${LOGS:-runs/artifacts-logs}        # one log per run
mkdir -p "$LOGS"
# The shipped settings, sized for a 2-core CPU (2 runs at a time with 1 thread each; see the README for the wall times).
# ITERS, BATCH, MINI, EPOCHS, NEW_TOKENS, LR, KL, SFT_EPOCHS, SFT_STEPS override them (e.g. a smoke test).
ITERS=${ITERS:-10}
PPO="--reward rm --iterations $ITERS --batch-size ${BATCH:-8} --mini-batch-size ${MINI:-4} --ppo-epochs ${EPOCHS:-2} --max-new-tokens ${NEW_TOKENS:-128} --learning-rate ${LR:-3e-4} --init-kl-coef ${KL:-0.05} --seed 0 --save-every 5 --resume"
RUNS=(
  "P2A|train-policy --preference P2A $PPO --out $OUT/P2A"
  "P2B|train-policy --preference P2B $PPO --out $OUT/P2B"
  "P1A|train-policy --preference P1A $PPO --out $OUT/P1A"
  "P1B|train-policy --preference P1B $PPO --out $OUT/P1B"
  "P3A|train-policy --preference P3A $PPO --out $OUT/P3A"
  "P3B|train-policy --preference P3B $PPO --out $OUT/P3B"
  "prompted-morl|train-policy --prompted-morl $PPO --out $OUT/prompted-morl"
  "rlhf|train-policy --rlhf $PPO --out $OUT/rlhf"
  "morlaif|train-policy --morlaif P1A,P2A,P3A $PPO --out $OUT/morlaif"
  "multitask|train-sft --epochs ${SFT_EPOCHS:-1} --batch-size 8 --seed 0 ${SFT_STEPS:+--max-steps $SFT_STEPS} --out $OUT/multitask"
)

$LAB fetch-model        # convert the model once, before parallel runs would race for the cache
run_one() {
  name=${1%%|*}; cmd=${1#*|}
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then return 0; fi
  if [ -f "$OUT/$name/adapter.provenance.json" ]; then echo "$name: done already"; return 0; fi
  echo "$name: rlphf-lab $cmd"
  start=$(date +%s)
  $LAB $cmd > "$LOGS/$name.log" 2>&1 && echo "$name: finished in $(( $(date +%s) - start )) s" \
    || { echo "$name: FAILED, see $LOGS/$name.log"; return 1; }
}
export -f run_one; export LAB OUT LOGS ONLY
printf '%s\n' "${RUNS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
