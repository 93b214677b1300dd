"""A fingerprint of PPO's numbers on a seeded tiny run: the sha256 of its metrics (every column but
time/ and those in NEW_COLUMNS, each column's values in order, the columns sorted by their values so
that renaming a metric leaves the hash alone), and of its adapter and value-head weights. A
refactoring that claims to change no number must leave both hashes as they were:

    .venv/bin/python scripts/ppo_fingerprint.py          # before and after the change, then compare

The run: the tiny random Llama of tests/tiny_models.py, 3 iterations with a held-out evaluation,
seed 0, one thread (so the floating-point sums run in one order).
"""
import csv
import hashlib
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from tiny_models import tiny_llama, tiny_tokenizer  # noqa: E402

from rlphf_lab.rl import PPOConfig, PPOTrainer, personalized_soups, toy_length_score_fn  # noqa: E402

NEW_COLUMNS = {"value/explained_variance"}     # metrics added since the first fingerprint (8c84839)
PROMPTS = ["Say hi.", "Name a fruit.", "Why is the sky blue?", "Count to three."]


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        objective = personalized_soups("P2A", toy_length_score_fn)
        config = PPOConfig(output_dir=out, iterations=3, eval_every=2, save_every=2, batch_size=2, mini_batch_size=1,
                           ppo_epochs=2, max_new_tokens=8, learning_rate=1e-2)
        judge = lambda instructions, responses: torch.tensor([[-len(r)] for r in responses], dtype=torch.float32)
        PPOTrainer(config, tiny_llama(), tiny_tokenizer(), PROMPTS, eval_prompts=["Hello?", "Name a colour."],
                   judge_fn=judge, **objective.trainer_kwargs()).train()
        with open(Path(out) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        columns = [k for k in rows[0] if not k.startswith("time/") and k not in NEW_COLUMNS]
        values = sorted(tuple(row[k] for row in rows) for k in columns)
        metrics = hashlib.sha256(repr(values).encode()).hexdigest()[:16]
        weights = hashlib.sha256()
        for name in ("adapter_model.safetensors", "value_head.safetensors"):
            from safetensors.torch import load_file
            for key, tensor in sorted(load_file(Path(out) / "adapter" / name).items()):
                weights.update(key.encode() + tensor.numpy().tobytes())
    print(f"metrics {metrics}  weights {weights.hexdigest()[:16]}  ({len(rows)} rows, {len(columns)} columns compared)")


if __name__ == "__main__":
    main()
