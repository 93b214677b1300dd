"""Frozen backbone features of (instruction, response): the input of the fast reward models.

The policy's own backbone (SmolLM2, frozen, no gradients) reads the whole conversation exactly as
PPO will score it -- the *plain* instruction (no preference prompt) and the response -- and we pool
its hidden states into one vector per conversation:

    phi(x, y) = [ mean_{t in y} h_t^{(L/2)},  mean_{t in y} h_t^{(L)},  h_last^{(L)},  log(1 + |y|),
                  fluency(y),  relevance(x, y) ]

mean over the response tokens at a middle and the last layer, the last layer's state at the final
token, the log token count of the response (mean pooling alone would throw length away), and four
numbers from the frozen model's own next-token probabilities of the answer, l_t = log p(y_t | x, y_<t):

    mean_t l_t             how fluent the answer is (word salad is improbable text)
    std_t l_t              how uneven (a fluent answer with a burst of nonsense)
    mean_t [p(y_t) > 0.9]  how predictable (an answer pasted twice is copied token for token)
    log p(<|im_end|> | x, y)   how likely the answer is to end where it ends (cut off mid-sentence: unlikely)

Mean pooling cannot see repetition or truncation (a text pasted twice has the same mean state);
these four numbers can, and they are what a language model knows about text without any labels.

Nothing above asks whether the answer is about the instruction: an off-topic paragraph is fluent and
long. Three relevance numbers do, by reading the answer a second time *without* the instruction
(the same chat template with an empty user turn) and comparing, token by token,
pmi_t = log p(y_t | x, y_<t) - log p(y_t | no instruction, y_<t)   (pointwise mutual information):

    mean_t pmi_t               how much the instruction helps predict the answer (off-topic: about 0)
    mean_{t <= 16} pmi_t       the same over the answer's first 16 tokens, where a dodge shows at once
    cos(mean_{t in x} h_t^{(L/2)}, mean_{t in y} h_t^{(L/2)})   do question and answer sit close together

These cost one more forward pass over the answer alone; the reward models learn from labelled pairs
how much each matters for their side (tests/test_reward_hacks.py checks they rank off-topic answers low).
Computing features once and caching them makes training a reward head take seconds on a CPU.
"""
from __future__ import annotations

import hashlib

import torch
from tqdm.auto import tqdm

from .. import config
from ..models import format_chat

FEATURE_VERSION = "v3-mid-last-mean+last+loglen+fluency+relevance"
N_FLUENCY = 4
N_RELEVANCE = 3
PMI_HEAD_TOKENS = 16


def conversation_text(tokenizer, instruction: str, response: str) -> str:
    """The scored text: chat template over (user: plain instruction, assistant: response)."""
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
    return tokenizer.apply_chat_template(messages, tokenize=False)


def feature_dim(model) -> int:
    return 3 * model.config.hidden_size + 1 + N_FLUENCY + N_RELEVANCE


def fluency_features(logp: torch.Tensor, input_ids: torch.Tensor, resp_mask: torch.Tensor,
                     eos_token_id: int) -> torch.Tensor:
    """The four fluency numbers (see the module docstring) per row: (B, T - 1), (B, T), (B, T) -> (B, 4).

    logp[:, t - 1] = log p(token t | tokens < t) on response tokens (anything elsewhere); resp_mask marks
    the response tokens, which end with <|im_end|> (EOS) and a newline: the answer's own tokens are
    those before the last EOS.
    """
    content, end = _answer_tokens(input_ids, resp_mask, eos_token_id)                  # (B, T - 1), (B,)
    n = content.sum(1).clamp(min=1)
    mean = (logp * content).sum(1) / n
    std = (((logp - mean[:, None]) ** 2 * content).sum(1) / n).sqrt()
    predictable = ((logp.exp() > 0.9).float() * content).sum(1) / n
    eos_logp = logp.gather(1, end[:, None]).squeeze(1)
    return torch.stack([mean, std, predictable, eos_logp], dim=1)


def _answer_tokens(input_ids: torch.Tensor, resp_mask: torch.Tensor, eos_token_id: int):
    """Which next-token positions are the answer's own tokens, (B, T - 1) in {0, 1}, and where each row's
    last EOS is predicted, (B,): column t - 1 stands for token t."""
    mask = resp_mask[:, 1:]
    is_eos = (input_ids[:, 1:] == eos_token_id) & (mask > 0)
    T = is_eos.shape[1]
    pos = torch.arange(T, device=mask.device)
    end = torch.where(is_eos.any(1), (is_eos * pos).max(1).values, torch.full_like(pos[:1].expand(len(mask)), T - 1))
    return mask * (pos[None, :] < end[:, None]).float(), end


def _first_tokens(content: torch.Tensor, k: int) -> torch.Tensor:
    """The first k marked positions of each row of a (B, N) 0/1 mask."""
    return content * (content.cumsum(1) <= k).float()


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:          # (B, N), (B, N) -> (B,)
    return (x * mask).sum(1) / mask.sum(1).clamp(min=1)


def _read_responses(model, tokenizer, texts: list[str], prompt_lens: list[int], *, hidden_states: bool):
    """One forward pass over chat texts whose last tokens are the response: returns the encoding, the
    response mask (B, T), the per-token log-probs logp (B, T - 1) (fp32, computed only where they predict
    a response token), the row lengths and the hidden states (or None)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    mask = enc["attention_mask"]                                   # (B, T)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)              # correct positions under left padding
    body = base.get_decoder()(input_ids=enc["input_ids"], attention_mask=mask, position_ids=position_ids,
                              output_hidden_states=hidden_states)
    lengths = mask.sum(-1)                                         # (B,) real tokens per row
    T = mask.shape[1]
    # response tokens: the last (length - prompt_len) real tokens of each row (left padding)
    resp_len = (lengths - torch.tensor(prompt_lens, device=mask.device)).clamp(min=1)   # (B,)
    pos = torch.arange(T, device=mask.device).unsqueeze(0)        # (1, T)
    resp_mask = (pos >= T - resp_len.unsqueeze(1)).float() * mask  # (B, T)
    if tokenizer.padding_side == "right":
        end = lengths.unsqueeze(1)
        resp_mask = ((pos < end) & (pos >= end - resp_len.unsqueeze(1))).float()
    # log p(token t | < t) where token t is a response token: the output layer on those positions only, in fp32
    where = resp_mask[:, 1:] > 0
    head = base.get_output_embeddings()
    picked = torch.nn.functional.linear(body.last_hidden_state[:, :-1][where].float(), head.weight.float())  # (N, V)
    logp = torch.zeros(where.shape, dtype=torch.float32, device=mask.device)
    logp[where] = picked.gather(-1, enc["input_ids"][:, 1:][where][:, None]).squeeze(-1) - torch.logsumexp(picked, -1)
    return enc, resp_mask, logp, lengths, (body.hidden_states if hidden_states else None)


@torch.no_grad()
def backbone_features(model, tokenizer, instructions: list[str], responses: list[str], *,
                      batch_size: int = 16, progress: bool = False) -> torch.Tensor:
    """phi(x, y) for each (instruction, response): float32 tensor (n, feature_dim(model)).

    Works on a plain causal LM or a PeftModel (call it inside `model.disable_adapter()` to read
    the frozen base model). Padding side does not matter: positions come from the attention mask.
    Rows are batched by length (less padding), and returned in the order given.
    """
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses; give one response per instruction.")
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n_layers = base.config.num_hidden_layers
    # the chat template around the user turn: <system + user header> instruction <end + assistant header>
    empty_prompt = len(tokenizer(format_chat(tokenizer, ""), add_special_tokens=False)["input_ids"])
    after_user = len(tokenizer("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    before_user = empty_prompt - after_user
    order = sorted(range(len(responses)), key=lambda i: len(instructions[i]) + len(responses[i]))
    out = [None] * len(responses)
    for start in tqdm(range(0, len(order), batch_size), desc="features", disable=not progress):
        idx = order[start:start + batch_size]
        ins, res = [instructions[i] for i in idx], [responses[i] for i in idx]
        texts = [conversation_text(tokenizer, i, r) for i, r in zip(ins, res)]
        prompt_lens = [len(tokenizer(format_chat(tokenizer, i), add_special_tokens=False)["input_ids"]) for i in ins]
        enc, resp_mask, logp, lengths, hidden = _read_responses(model, tokenizer, texts, prompt_lens,
                                                                hidden_states=True)
        T = resp_mask.shape[1]
        resp_len = resp_mask.sum(1)
        last_index = (lengths - 1) if tokenizer.padding_side == "right" else torch.full_like(lengths, T - 1)

        def mean_over(h, m):                                           # (B, T, H), (B, T) -> (B, H)
            return (h.float() * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1)

        mid, last = hidden[n_layers // 2], hidden[n_layers]
        final_state = last[torch.arange(len(texts)), last_index].float()      # (B, H)
        log_len = torch.log1p(resp_len.float()).unsqueeze(1)                 # (B, 1)
        fluency = fluency_features(logp, enc["input_ids"], resp_mask, tokenizer.eos_token_id)   # (B, 4)

        # relevance: the same answer read with an empty user turn; pmi_t = log p(y_t | x) - log p(y_t | no x)
        empty_texts = [conversation_text(tokenizer, "", r) for r in res]
        enc0, resp_mask0, logp0, _, _ = _read_responses(model, tokenizer, empty_texts, [empty_prompt] * len(res),
                                                        hidden_states=False)
        content, _ = _answer_tokens(enc["input_ids"], resp_mask, tokenizer.eos_token_id)
        content0, _ = _answer_tokens(enc0["input_ids"], resp_mask0, tokenizer.eos_token_id)
        head, head0 = _first_tokens(content, PMI_HEAD_TOKENS), _first_tokens(content0, PMI_HEAD_TOKENS)
        pmi = _masked_mean(logp, content) - _masked_mean(logp0, content0)
        pmi_head = _masked_mean(logp, head) - _masked_mean(logp0, head0)
        row_start = torch.zeros_like(lengths) if tokenizer.padding_side == "right" else T - lengths
        pos = torch.arange(T, device=resp_mask.device)[None, :] - row_start[:, None]          # (B, T) from row start
        user = ((pos >= before_user) & (pos < torch.tensor(prompt_lens, device=pos.device)[:, None] - after_user)).float()
        cos = torch.nn.functional.cosine_similarity(mean_over(mid, user), mean_over(mid, resp_mask), dim=-1)
        relevance = torch.stack([pmi, pmi_head, cos], dim=1)                  # (B, 3)
        rows = torch.cat([mean_over(mid, resp_mask), mean_over(last, resp_mask), final_state, log_len, fluency,
                          relevance], -1).cpu()
        for i, row in zip(idx, rows):
            out[i] = row
    return torch.stack(out) if out else torch.empty(0, feature_dim(base))


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
