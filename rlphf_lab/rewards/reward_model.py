"""Bradley-Terry reward models, one per preference side, with two back ends.

The model: a scalar reward r(x, y) trained so that the labelled-better response scores higher,

    P(y_c > y_r | x) = sigmoid(r(x, y_c) - r(x, y_r)),   loss = -log sigmoid(r(x, y_c) - r(x, y_r)).

Back ends
- "features" (fast, laptop): frozen SmolLM2 features phi(x, y) (see features.py) and a small trained
  head r = head(phi). Trains in seconds on a CPU. Saved as `head.safetensors` + `reward_config.json`.
- "trl" (the library path): TRL's RewardTrainer on the SmolLM2 backbone as a sequence classifier
  with LoRA; the score head is saved with the adapter (PEFT `modules_to_save`). Saved as a PEFT
  adapter folder + `reward_config.json`.

Both score the conversation (plain instruction, response) with `RewardModel.score`, and both
store normalisation statistics (mean, std of the raw reward on reference-policy samples) so that
`score(..., normalize=True)` has mean 0 and std 1 on the reference policy. PPO's batched scorer,
`RewardScorer` (every side from one feature pass), reads "features" models only.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from .. import config
from ..preferences import SIDES, get_preference
from .features import backbone_features, conversation_text
from .losses import bradley_terry_loss, margin_accuracy

CONFIG_FILE = "reward_config.json"


# --------------------------------------------------------------------------------------------
# Fast path: a small head on frozen features
# --------------------------------------------------------------------------------------------

class RewardHead(nn.Module):
    """r = MLP((phi - mu) / sigma): standardise the features, then a small MLP to one number."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, phi: torch.Tensor) -> torch.Tensor:          # (n, dim) -> (n,)
        return self.net((phi - self.feature_mean) / self.feature_std).squeeze(-1)


@dataclass
class TrainResult:
    side: str
    train_accuracy: float
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def pair_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """Fraction of pairs where the chosen response scores higher (a tie counts half)."""
    return margin_accuracy((r_chosen - r_rejected).float())


def train_head(phi_chosen: torch.Tensor, phi_rejected: torch.Tensor, *, hidden: int = 64, epochs: int = 300,
               lr: float = 3e-3, weight_decay: float = 1e-2, seed: int = 0, side: str = "",
               progress: bool = False) -> tuple[RewardHead, TrainResult]:
    """Train a RewardHead with the Bradley-Terry loss, full batch (the features fit in memory)."""
    if phi_chosen.shape != phi_rejected.shape or phi_chosen.ndim != 2 or len(phi_chosen) == 0:
        raise ValueError(f"Need two (n_pairs, dim) feature tensors of the same shape with n_pairs > 0; "
                         f"got {tuple(phi_chosen.shape)} and {tuple(phi_rejected.shape)}.")
    torch.manual_seed(seed)
    start = time.perf_counter()
    head = RewardHead(phi_chosen.shape[1], hidden)
    both = torch.cat([phi_chosen, phi_rejected])
    head.feature_mean.copy_(both.mean(0))
    head.feature_std.copy_(both.std(0).clamp(min=1e-4))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in tqdm(range(epochs), desc=f"reward head {side}", disable=not progress):
        # loss = -log sigmoid(r(x, y_c) - r(x, y_r)), averaged over pairs
        loss = bradley_terry_loss(head(phi_chosen), head(phi_rejected))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    with torch.no_grad():
        acc = pair_accuracy(head(phi_chosen), head(phi_rejected))
    return head, TrainResult(side, acc, losses, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# A trained reward model (either back end), and the batched scorer PPO calls
# --------------------------------------------------------------------------------------------

@dataclass
class RewardModel:
    """A trained reward model for one preference side. `score()` takes plain instructions and
    responses; `backend` is "features" or "trl". `score_mean/std` standardise on reference samples."""
    side: str
    backend: str
    head: RewardHead | None = None        # features back end
    seqcls: nn.Module | None = None       # trl back end (PeftModel around a sequence classifier)
    score_mean: float = 0.0
    score_std: float = 1.0
    metrics: dict = field(default_factory=dict)

    @torch.no_grad()
    def score_features(self, phi: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        if self.head is None:
            raise ValueError(f"score_features needs a 'features' reward model; {self.side} uses {self.backend!r}.")
        r = self.head(phi.float())
        return (r - self.score_mean) / self.score_std if normalize else r

    @torch.no_grad()
    def score(self, backbone, tokenizer, instructions: list[str], responses: list[str], *,
              normalize: bool = True, batch_size: int = 16) -> torch.Tensor:
        """Reward of each (plain instruction, response): tensor (n,). `backbone` is the frozen policy
        model (features back end; ignored by the trl back end)."""
        if self.backend == "features":
            return self.score_features(backbone_features(backbone, tokenizer, instructions, responses,
                                                         batch_size=batch_size), normalize)
        r = trl_scores(self.seqcls, tokenizer, instructions, responses, batch_size=batch_size)
        return (r - self.score_mean) / self.score_std if normalize else r

    def save(self, folder: str | Path) -> Path:
        """Write the folder as `<folder>.partial`, then rename it: an old model there stays whole until then."""
        from ..data import partial_path, replace_with

        folder = Path(folder)
        tmp = partial_path(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.backend == "features":
            save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, tmp / "head.safetensors")
            extra = {"feature_dim": self.head.feature_mean.shape[0], "hidden": self.head.net[0].out_features}
        else:
            self.seqcls.save_pretrained(tmp)          # adapter + score head (modules_to_save), safetensors
            extra = {}
        record = {"side": self.side, "backend": self.backend, "score_mean": self.score_mean,
                  "score_std": self.score_std, "metrics": self.metrics, **extra}
        (tmp / CONFIG_FILE).write_text(json.dumps(record, indent=2) + "\n")
        return replace_with(tmp, folder)


def load_reward_model(folder: str | Path, device=None) -> RewardModel:
    """Load a RewardModel saved by `RewardModel.save` (either back end).

    The files are checked first: reward_config.json (valid JSON, the fields it needs, a finite
    score scale) and the weights (readable, finite, the keys and shapes of the head); each problem
    is a ValueError naming the file and how to get it back.
    """
    from ..data import read_json, read_safetensors

    folder = Path(folder)
    if not (folder / CONFIG_FILE).exists():
        raise FileNotFoundError(f"No {CONFIG_FILE} in {folder}: train one with `rlphf-lab train-rewards` "
                                f"or pass the folder of a saved reward model.")
    fix = (f"retrain it with `rlphf-lab train-rewards --sides {folder.name} --out {folder.parent.parent}`, or restore "
           f"it from git (`git checkout -- {folder}`) if it is a shipped reward model")
    record = read_json(folder / CONFIG_FILE, fix)
    needed = ["side", "backend", "score_mean", "score_std"] + (["feature_dim", "hidden"]
                                                               if record.get("backend") == "features" else [])
    missing = [k for k in needed if k not in record]
    if missing or record["backend"] not in ("features", "trl"):
        raise ValueError(f"{folder / CONFIG_FILE} lacks {missing or 'a known backend'} "
                         f"(backend {record.get('backend')!r}); {fix}.")
    if not (math.isfinite(record["score_mean"]) and math.isfinite(record["score_std"]) and record["score_std"] > 0):
        raise ValueError(f"{folder / CONFIG_FILE}: score_mean={record['score_mean']}, score_std={record['score_std']} "
                         f"(the std must be finite and > 0); {fix}.")
    rm = RewardModel(record["side"], record["backend"], score_mean=record["score_mean"],
                     score_std=record["score_std"], metrics=record.get("metrics", {}))
    if rm.backend == "features":
        rm.head = RewardHead(record["feature_dim"], record["hidden"])
        weights = read_safetensors(folder / "head.safetensors", fix)
        expected = {k: tuple(v.shape) for k, v in rm.head.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in weights.items()}
        if found != expected:
            raise ValueError(f"{folder / 'head.safetensors'} does not fit feature_dim={record['feature_dim']}, "
                             f"hidden={record['hidden']} in {CONFIG_FILE} (weights {found}, expected {expected}); {fix}.")
        rm.head.load_state_dict(weights)
        rm.head.eval()
    else:
        from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME

        read_json(folder / CONFIG_NAME, fix)
        read_safetensors(folder / SAFETENSORS_WEIGHTS_NAME, fix)
        rm.seqcls = load_trl_model(folder, device=device)
    return rm


def load_reward_models(root: str | Path | None = None, sides=tuple(SIDES), backend: str = "features") -> dict[str, RewardModel]:
    """The shipped (or freshly trained) reward models: {side: RewardModel} from root/backend/side."""
    root = Path(root) if root else config.DATA_DIR / "reward_models"
    return {s: load_reward_model(root / backend / get_preference(s).code) for s in sides}


class RewardScorer:
    """Scores many sides at once for PPO: features are computed once per batch and every side's
    head reads them. Call with (side_codes, instructions, responses) -> tensor (batch, len(side_codes))."""

    def __init__(self, backbone, tokenizer, reward_models: dict[str, RewardModel], normalize: bool = True):
        if not reward_models:
            raise ValueError("RewardScorer needs at least one reward model; load them with load_reward_models().")
        other = sorted(s for s, m in reward_models.items() if m.backend != "features")
        if other:
            raise ValueError(f"RewardScorer reads one shared feature pass, so it takes 'features' reward models; "
                             f"{other} use another back end: score them one by one with RewardModel.score.")
        self.backbone, self.tokenizer, self.models, self.normalize = backbone, tokenizer, reward_models, normalize

    @torch.no_grad()
    def __call__(self, side_codes, instructions: list[str], responses: list[str]) -> torch.Tensor:
        missing = [s for s in side_codes if s not in self.models]
        if missing:
            raise ValueError(f"No reward model for {missing}; loaded: {sorted(self.models)}.")
        backbone = self.backbone
        if hasattr(backbone, "disable_adapter"):              # a LoRA policy: read the frozen base model
            with backbone.disable_adapter():
                phi = backbone_features(backbone, self.tokenizer, instructions, responses)
        else:
            phi = backbone_features(backbone, self.tokenizer, instructions, responses)
        cols = [self.models[s].score_features(phi, self.normalize) for s in side_codes]   # K x (batch,)
        return torch.stack(cols, dim=1)                        # (batch, K)


# --------------------------------------------------------------------------------------------
# Library path: TRL RewardTrainer + LoRA on the backbone as a sequence classifier
# --------------------------------------------------------------------------------------------

def _seqcls_base(device=None):
    from transformers import AutoModelForSequenceClassification

    from ..models import convert_model, load_tokenizer

    path = convert_model()
    tokenizer = load_tokenizer(path)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32,
                                                               local_files_only=True)
    model.config.pad_token_id = tokenizer.pad_token_id     # the score is read at the last non-pad token
    return model.to(config.default_device(device)), tokenizer


def load_trl_model(folder: str | Path, device=None):
    """Base sequence classifier + the saved LoRA adapter *and* its trained score head."""
    from peft import PeftModel

    base, _ = _seqcls_base(device)
    model = PeftModel.from_pretrained(base, str(folder), local_files_only=True)
    model.eval()
    return model


@torch.no_grad()
def trl_scores(model, tokenizer, instructions: list[str], responses: list[str], batch_size: int = 16) -> torch.Tensor:
    """Raw rewards of a sequence-classifier reward model on (instruction, response) conversations."""
    out = []
    for start in range(0, len(responses), batch_size):
        texts = [conversation_text(tokenizer, i, r) for i, r in
                 zip(instructions[start:start + batch_size], responses[start:start + batch_size])]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        mask = enc["attention_mask"]
        logits = model(input_ids=enc["input_ids"], attention_mask=mask,
                       position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits   # (B, 1)
        out.append(logits[:, 0].float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def train_trl_reward_model(side: str, train_pairs: list[dict], *, out_dir: str | Path, max_steps: int | None = None,
                           epochs: float = 1.0, batch_size: int = 8, learning_rate: float = 2e-4, lora_r: int = 8,
                           seed: int = 0, max_length: int = 384):
    """Fit a LoRA reward model with TRL's RewardTrainer (CPU-friendly config). Returns (PeftModel, tokenizer).

    The score head is listed in `modules_to_save`, so it is trained *and saved* with the adapter
    (the reference code lost it on reload; tests/test_reward_models.py proves ours does not).
    """
    from peft import LoraConfig
    from trl import RewardConfig, RewardTrainer

    from ..data import to_preference_dataset

    model, tokenizer = _seqcls_base()
    tokenizer.padding_side = "right"
    use_bf16 = config.default_dtype() == torch.bfloat16
    args = RewardConfig(
        output_dir=str(out_dir), per_device_train_batch_size=batch_size, num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1, learning_rate=learning_rate, seed=seed,
        bf16=use_bf16, gradient_checkpointing=False, use_cpu=not torch.cuda.is_available(),
        disable_dropout=True, max_length=max_length, logging_steps=10, save_strategy="no", report_to=[],
        dataloader_num_workers=0, dataset_num_proc=None)
    lora = LoraConfig(task_type="SEQ_CLS", r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0,
                      target_modules=["q_proj", "v_proj"], modules_to_save=["score"])
    dataset = to_preference_dataset(train_pairs).select_columns(["prompt", "chosen", "rejected"])
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=lora)
    trainer.train()
    peft_model = trainer.model
    peft_model.eval()
    tokenizer.padding_side = "left"
    return peft_model, tokenizer


# --------------------------------------------------------------------------------------------
# Evaluation helpers
# --------------------------------------------------------------------------------------------

def pairs_features(pairs: list[dict], features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack cached candidate features for the chosen and rejected side of each pair."""
    missing = [p["chosen_id"] for p in pairs if p["chosen_id"] not in features] + \
              [p["rejected_id"] for p in pairs if p["rejected_id"] not in features]
    if missing:
        raise ValueError(f"{len(missing)} pair responses have no features (e.g. {missing[0]}); "
                         f"compute features for the same candidate file the pairs came from.")
    return (torch.stack([features[p["chosen_id"]] for p in pairs]),
            torch.stack([features[p["rejected_id"]] for p in pairs]))


def load_reward_scorer(root: str | Path | None = None, sides=None, backbone=None, tokenizer=None,
                       normalize: bool = True) -> RewardScorer:
    """The shipped reward models as one PPO scorer: `scorer(side_codes, instructions, responses)`
    -> (batch, K). Loads its own frozen copy of the base model unless `backbone` is given."""
    from ..models import load_policy

    root = Path(root) if root else config.DATA_DIR / "reward_models"
    if sides is None:
        sides = [s for s in SIDES if (root / "features" / s / CONFIG_FILE).exists()]
        sides += [p.name for p in sorted((root / "features").glob("*")) if p.name not in SIDES
                  and (p / CONFIG_FILE).exists()] if (root / "features").exists() else []
    if not sides:
        raise FileNotFoundError(f"No reward models in {root / 'features'}: run `rlphf-lab train-rewards` first.")
    models = {s: load_reward_model(root / "features" / s) for s in sides}
    if backbone is None:
        backbone, tokenizer = load_policy()
    return RewardScorer(backbone, tokenizer, models, normalize=normalize)
