#!/usr/bin/env bash
# Train every shipped policy adapter with the project's own CLI, seeded, and install it into data/adapters/:
#   the six Personalized Soups sides, Prompted-MORL, the RLHF baseline, MORLAIF, the multitask SFT baseline,
#   and the six DPO side adapters (dpo-P1A ... dpo-P3B: TRL's DPOTrainer on each side's labelled pairs).
#
#   bash scripts/make_artifacts.sh               # one run after another, all cores each (the CPU way)
#   JOBS=10 bash scripts/make_artifacts.sh       # all at once, e.g. on a GPU (CUDA is used when present)
#   ONLY=P2A,P2B bash scripts/make_artifacts.sh  # some of them
#   ITERS=2 EVAL_EVERY=1 RUNS_DIR=/tmp/smoke OUT=/tmp/smoke-adapters bash scripts/make_artifacts.sh   # a smoke test
#
# Nothing is lost and nothing is half-shipped:
#   * every run trains in $RUNS_DIR/<name> (checkpoints every $SAVE_EVERY iterations); rerunning this script
#     resumes an unfinished run (--resume) where it stopped, with the same numbers as an uninterrupted run;
#   * only a finished run is installed: its adapter, metrics.csv and provenance are copied into $OUT/<name>
#     (written as <name>.partial, then renamed); the adapter it replaces is moved to $RUNS_DIR/replaced/;
#   * a run whose adapter is already installed from the same run folder is skipped.
# The recipe (README, "Policies"); its learning rate is still being settled by scripts/sweep_recipe.py
# (data/sweeps/recipe.md: so far one run, P3A at 3e-4). The install step has no automated test: smoke-test it as above.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${LAB:-.venv/bin/rlphf-lab}
OUT=${OUT:-data/adapters}
RUNS_DIR=${RUNS_DIR:-runs/artifacts}
JOBS=${JOBS:-1}
mkdir -p "$RUNS_DIR/logs"
# The recipe. ITERS x BATCH rollouts per adapter; the KL controller's horizon is fitted to that (ppo.horizon_for_run);
# a cut-off answer keeps its score minus the missing-EOS penalty; held-out metrics on the dev prompts every EVAL_EVERY.
ITERS=${ITERS:-250}
SAVE_EVERY=${SAVE_EVERY:-10}
EVAL_EVERY=${EVAL_EVERY:-25}
PPO="--reward rm --iterations $ITERS --batch-size ${BATCH:-8} --mini-batch-size ${MINI:-4} --ppo-epochs ${EPOCHS:-2} \
--max-new-tokens ${NEW_TOKENS:-128} --learning-rate ${LR:-3e-4} --init-kl-coef ${KL:-0.05} --kl-target ${TARGET_KL:-6} \
--missing-eos-penalty ${EOS_PENALTY:-1.0} --seed 0 --save-every $SAVE_EVERY --eval-every $EVAL_EVERY --resume"
RUNS=(
  "P2A|train-policy --preference P2A $PPO"
  "P2B|train-policy --preference P2B $PPO"
  "P1A|train-policy --preference P1A $PPO"
  "P1B|train-policy --preference P1B $PPO"
  "P3A|train-policy --preference P3A $PPO"
  "P3B|train-policy --preference P3B $PPO"
  "prompted-morl|train-policy --prompted-morl $PPO"
  "rlhf|train-policy --rlhf $PPO"
  "morlaif|train-policy --morlaif P1A,P2A,P3A $PPO"
  "multitask|train-sft --epochs ${SFT_EPOCHS:-1} --batch-size 8 --seed 0 ${SFT_STEPS:+--max-steps $SFT_STEPS}"
)
# DPO: DPO_PAIRS pairs of each side (annotator gap >= 1, winner above the base model's own answer: --above-base,
# chosen on the dev prompts, data/sweeps/dpo_recipe/dev_eval.csv), one epoch of batch 8; about 12 minutes per side
# on 2 cores
DPO="--max-pairs ${DPO_PAIRS:-256} --above-base --seed 0 --resume ${DPO_STEPS:+--max-steps $DPO_STEPS}"
for side in P2A P2B P1A P1B P3A P3B; do RUNS+=("dpo-$side|train-dpo --preference $side $DPO"); done

$LAB fetch-model        # convert the model once, before parallel runs would race for the cache

install_one() {         # copy a finished run into $OUT/<name>; the adapter it replaces goes to $RUNS_DIR/replaced/
  name=$1; run=$RUNS_DIR/$name; dest=$OUT/$name; tmp=$OUT/$name.partial
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp -r "$run/adapter" "$tmp/adapter"
  cp "$run/adapter.provenance.json" "$run/metrics.csv" "$tmp/"
  echo "$run" > "$tmp/.installed-from"
  if [ -e "$dest" ]; then
    mkdir -p "$RUNS_DIR/replaced"
    mv "$dest" "$RUNS_DIR/replaced/$name-$(date -u +%Y%m%dT%H%M%SZ)"
  fi
  mv "$tmp" "$dest"
  echo "$name: installed into $dest"
}

run_one() {
  name=${1%%|*}; cmd=${1#*|}; run=$RUNS_DIR/$name
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then return 0; fi
  if [ -f "$OUT/$name/.installed-from" ] && [ "$(cat "$OUT/$name/.installed-from")" = "$run" ] \
     && cmp -s "$OUT/$name/adapter.provenance.json" "$run/adapter.provenance.json" 2>/dev/null; then
    echo "$name: installed already from $run"; return 0
  fi
  if [ ! -f "$run/adapter.provenance.json" ]; then
    echo "$name: rlphf-lab $cmd --out $run"
    start=$(date +%s)
    $LAB $cmd --out "$run" > "$RUNS_DIR/logs/$name.log" 2>&1 \
      || { echo "$name: FAILED or interrupted, see $RUNS_DIR/logs/$name.log (rerun to resume)"; return 1; }
    echo "$name: finished in $(( $(date +%s) - start )) s"
  fi
  install_one "$name"
}
export -f run_one install_one; export LAB OUT RUNS_DIR ONLY
printf '%s\n' "${RUNS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
