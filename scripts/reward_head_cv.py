"""Does another reward-head setting help the sides that miss their targets? 3-fold cross-validation over train prompts.

    .venv/bin/python scripts/reward_head_cv.py                       # every setting, P2A and P3A
    .venv/bin/python scripts/reward_head_cv.py base,pca16 P2A,P3A,P1A

For each setting and side: held-out-fold accuracy on the normal pairs ("cv") and on the pairs that reject a
hack answer ("cv-hack"), folds by train prompt (never the eval prompts), then the held-out eval accuracy of the
setting trained on all train pairs, for the record only (the choice is made on the folds). Reads the cached v3
features of data/candidates.jsonl (`rlphf-lab train-rewards` computes them; 40 min the first time).
"""
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from rlphf_lab.data import load_pairs, read_jsonl  # noqa: E402
from rlphf_lab.models import load_policy  # noqa: E402
from rlphf_lab.rewards.features import cached_features  # noqa: E402
from rlphf_lab.rewards.reward_model import pair_accuracy, pairs_features, train_head  # noqa: E402

SETTINGS = {"base": {}, "wd0.3": {"weight_decay": 0.3}, "ep100": {"epochs": 100}, "h16": {"hidden": 16},
            "pca64": {"pca": 64}, "pca16": {"pca": 16}}     # train_head's keywords; "pca": hidden states to k dims


def pca_map(feats: dict, ids, k: int, hidden: int):
    """Project the pooled hidden-state blocks (the first `hidden` numbers) on their top k principal directions
    over the given candidates; the scalar features pass through."""
    X = torch.stack([feats[i][:hidden] for i in ids])
    mu = X.mean(0)
    _, _, V = torch.pca_lowrank(X - mu, q=k, center=False)
    return lambda x: torch.cat([(x[:, :hidden] - mu) @ V[:, :k], x[:, hidden:]], 1)


def evaluate(setting: dict, side: str, feats, by_id, train_pairs, eval_pairs, fold, hidden):
    """(cv accuracy on normal pairs, cv accuracy on hack pairs, eval accuracy) of one head setting."""
    setting = dict(setting)
    k = setting.pop("pca", None)
    tr = [p for p in train_pairs if p["preference"] == side]

    def fit(pairs):
        ids = {i for p in pairs for i in (p["chosen_id"], p["rejected_id"])}
        tf = pca_map(feats, ids, k, hidden) if k else (lambda x: x)
        head, _ = train_head(*(tf(x) for x in pairs_features(pairs, feats)), seed=0, **setting)
        return lambda pairs_: pair_accuracy(*(head(tf(x)) for x in pairs_features(pairs_, feats)))

    normal, hack = [], []
    for f in range(3):
        val = [p for p in tr if fold[p["prompt_id"]] == f]
        hk = [p for p in val if by_id[p["rejected_id"]]["style"].startswith("hack")]
        accuracy = fit([p for p in tr if fold[p["prompt_id"]] != f])
        with torch.no_grad():
            normal.append(accuracy([p for p in val if p not in hk]))
            hack.append(accuracy(hk))
    accuracy = fit(tr)
    with torch.no_grad():
        held_out = accuracy([p for p in eval_pairs if p["preference"] == side])
    return sum(normal) / 3, sum(hack) / 3, held_out


def main() -> None:
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else list(SETTINGS)
    sides = sys.argv[2].split(",") if len(sys.argv) > 2 else ["P2A", "P3A"]
    model, tok = load_policy()
    candidates = read_jsonl(REPO / "data" / "candidates.jsonl")
    feats = cached_features(model, tok, candidates, name="candidates", progress=False)
    by_id = {c["id"]: c for c in candidates}
    train_pairs, eval_pairs = load_pairs("pairs_train"), load_pairs("pairs_eval")
    prompts = sorted({p["prompt_id"] for p in train_pairs})
    fold = {pid: i % 3 for i, pid in enumerate(prompts)}
    hidden = 3 * model.config.hidden_size          # the three pooled hidden-state blocks come first
    for name in names:
        start = time.time()
        res = [(side, *evaluate(SETTINGS[name], side, feats, by_id, train_pairs, eval_pairs, fold, hidden))
               for side in sides]
        print(name, " | ".join(f"{s} cv {a:.3f} cv-hack {h:.3f} eval {e:.3f}" for s, a, h, e in res),
              f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
