"""Frozen backbone features of (instruction, response): the input of the fast reward models.

The policy's own backbone (SmolLM2, frozen, no gradients) reads the whole conversation exactly as
PPO will score it -- the *plain* instruction (no preference prompt) and the response -- and we pool
its hidden states into one vector per conversation:

    phi(x, y) = [ mean_{t in y} h_t^{(L/2)},  mean_{t in y} h_t^{(L)},  h_last^{(L)},  log(1 + |y|),
                  fluency(y) ]

mean over the response tokens at a middle and the last layer, the last layer's state at the final
token, the log token count of the response (mean pooling alone would throw length away), and four
numbers from the frozen model's own next-token probabilities of the answer, l_t = log p(y_t | x, y_<t):

    mean_t l_t             how fluent the answer is (word salad is improbable text)
    std_t l_t              how uneven (a fluent answer with a burst of nonsense)
    mean_t [p(y_t) > 0.9]  how predictable (an answer pasted twice is copied token for token)
    log p(<|im_end|> | x, y)   how likely the answer is to end where it ends (cut off mid-sentence: unlikely)

Mean pooling cannot see repetition or truncation (a text pasted twice has the same mean state);
these four numbers can, and they are what a language model knows about text without any labels.
Computing features once and caching them makes training a reward head take seconds on a CPU.
"""
from __future__ import annotations

import hashlib

import torch
from tqdm.auto import tqdm

from .. import config
from ..models import format_chat

FEATURE_VERSION = "v2-mid-last-mean+last+loglen+fluency"
N_FLUENCY = 4


def conversation_text(tokenizer, instruction: str, response: str) -> str:
    """The scored text: chat template over (user: plain instruction, assistant: response)."""
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
    return tokenizer.apply_chat_template(messages, tokenize=False)


def feature_dim(model) -> int:
    return 3 * model.config.hidden_size + 1 + N_FLUENCY


def fluency_features(logits: torch.Tensor, input_ids: torch.Tensor, resp_mask: torch.Tensor,
                     eos_token_id: int) -> torch.Tensor:
    """The four fluency numbers (see the module docstring) per row: (B, T, V), (B, T), (B, T) -> (B, 4).

    resp_mask marks the response tokens, which end with <|im_end|> (EOS) and a newline; the answer's
    own tokens are those before the last EOS.
    """
    # l_t = log p(y_t | y_<t): the logits at t - 1 predict token t, on response tokens only  (B, T - 1)
    mask = resp_mask[:, 1:]
    where = mask > 0
    picked = logits[:, :-1][where].float()                                              # (N, V)
    logp = torch.zeros(mask.shape, dtype=torch.float32, device=logits.device)
    logp[where] = picked.gather(-1, input_ids[:, 1:][where][:, None]).squeeze(-1) - torch.logsumexp(picked, dim=-1)
    is_eos = (input_ids[:, 1:] == eos_token_id) & (mask > 0)
    T = is_eos.shape[1]
    pos = torch.arange(T, device=logp.device)
    end = torch.where(is_eos.any(1), (is_eos * pos).max(1).values, torch.full_like(pos[:1].expand(len(logp)), T - 1))
    content = mask * (pos[None, :] < end[:, None]).float()                               # (B, T - 1)
    n = content.sum(1).clamp(min=1)
    mean = (logp * content).sum(1) / n
    std = (((logp - mean[:, None]) ** 2 * content).sum(1) / n).sqrt()
    predictable = ((logp.exp() > 0.9).float() * content).sum(1) / n
    eos_logp = logp.gather(1, end[:, None]).squeeze(1)
    return torch.stack([mean, std, predictable, eos_logp], dim=1)


@torch.no_grad()
def backbone_features(model, tokenizer, instructions: list[str], responses: list[str], *,
                      batch_size: int = 16, progress: bool = False) -> torch.Tensor:
    """phi(x, y) for each (instruction, response): float32 tensor (n, 3 * hidden + 1).

    Works on a plain causal LM or a PeftModel (call it inside `model.disable_adapter()` to read
    the frozen base model). Padding side does not matter: positions come from the attention mask.
    """
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses; give one response per instruction.")
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n_layers = base.config.num_hidden_layers
    out = []
    for start in tqdm(range(0, len(responses), batch_size), desc="features", disable=not progress):
        ins, res = instructions[start:start + batch_size], responses[start:start + batch_size]
        texts = [conversation_text(tokenizer, i, r) for i, r in zip(ins, res)]
        prompt_lens = [len(tokenizer(format_chat(tokenizer, i), add_special_tokens=False)["input_ids"]) for i in ins]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        mask = enc["attention_mask"]                                   # (B, T)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)              # correct positions under left padding
        output = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=position_ids,
                       output_hidden_states=True)
        hidden = output.hidden_states                                  # n_layers + 1 tensors (B, T, H)
        lengths = mask.sum(-1)                                         # (B,) real tokens per row
        T = mask.shape[1]
        # response tokens: the last (length - prompt_len) real tokens of each row (left padding)
        resp_len = (lengths - torch.tensor(prompt_lens, device=mask.device)).clamp(min=1)   # (B,)
        pos = torch.arange(T, device=mask.device).unsqueeze(0)        # (1, T)
        resp_mask = (pos >= T - resp_len.unsqueeze(1)).float() * mask  # (B, T)
        if tokenizer.padding_side == "right":
            end = lengths.unsqueeze(1)
            resp_mask = ((pos < end) & (pos >= end - resp_len.unsqueeze(1))).float()
        last_index = (lengths - 1) if tokenizer.padding_side == "right" else torch.full_like(lengths, T - 1)

        def mean_over_response(h):                                     # (B, T, H) -> (B, H)
            return (h.float() * resp_mask.unsqueeze(-1)).sum(1) / resp_mask.sum(1, keepdim=True)

        mid, last = hidden[n_layers // 2], hidden[n_layers]
        final_state = last[torch.arange(len(texts)), last_index].float()      # (B, H)
        log_len = torch.log1p(resp_len.float()).unsqueeze(1)                 # (B, 1)
        fluency = fluency_features(output.logits, enc["input_ids"], resp_mask, tokenizer.eos_token_id)   # (B, 4)
        out.append(torch.cat([mean_over_response(mid), mean_over_response(last), final_state, log_len, fluency],
                             -1).cpu())
    return torch.cat(out) if out else torch.empty(0, feature_dim(base))


def cached_features(model, tokenizer, rows: list[dict], *, name: str, batch_size: int = 16,
                    progress: bool = True) -> dict[str, torch.Tensor]:
    """Features for candidate rows ({"id", "instruction", "response"}), cached on disk by content.

    Returns {candidate id: feature vector}. The cache key hashes the texts, FEATURE_VERSION, the
    backbone (its name or path) and its dtype, so a changed candidate file, feature definition or
    model is recomputed, never silently reused.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = f"{getattr(base.config, '_name_or_path', type(base).__name__)}|{next(base.parameters()).dtype}"
    digest = hashlib.sha256(f"{FEATURE_VERSION}|{backbone}".encode())
    for r in rows:
        digest.update(f"{r['id']}\x00{r['instruction']}\x00{r['response']}\x01".encode())
    path = config.cache_dir() / "features" / f"{name}-{digest.hexdigest()[:16]}.pt"
    if path.exists():
        return torch.load(path)
    feats = backbone_features(model, tokenizer, [r["instruction"] for r in rows], [r["response"] for r in rows],
                              batch_size=batch_size, progress=progress)
    table = {r["id"]: f for r, f in zip(rows, feats)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(table, path)
    return table
