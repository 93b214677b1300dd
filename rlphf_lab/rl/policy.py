"""The model PPO trains: a LoRA policy and a value head, one module so that DDP sees a single forward."""
from __future__ import annotations

import torch
from torch import nn

from .ppo_config import PPOConfig

class PolicyWithValueHead(nn.Module):
    """A PEFT LoRA causal LM and a linear value head on its last hidden state."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy                                    # peft.PeftModel
        hidden = policy.get_base_model().config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1)                  # fp32
        nn.init.zeros_(self.value_head.weight)                  # V = 0 everywhere at the start
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask, n_response: int):
        """logits (B, T, V) predicting the last n_response tokens, and values V(s_t) (B, T)."""
        lm = self.policy.get_base_model()                       # the LoRA layers are inside it
        # positions count real tokens only, so left padding does not shift them
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        hidden = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                  use_cache=False).last_hidden_state        # (B, P + T, H)
        # state s_t (prompt + first t response tokens) ends at position P + t - 1
        h = hidden[:, -n_response - 1:-1]                                    # (B, T, H)
        # logits in fp32 (hidden state and output layer cast up): in bf16 the logits are rounded
        # to steps of 0.06-0.125 at |z| = 8-32, and that rounding would enter every ratio and KL_t
        head = lm.get_output_embeddings()
        if head.weight.dtype == torch.float32:
            logits = head(h.float())                                         # (B, T, V)
        else:
            bias = None if head.bias is None else head.bias.float()
            logits = nn.functional.linear(h.float(), head.weight.float(), bias)   # (B, T, V) fp32
        values = self.value_head(h.float()).squeeze(-1)                      # (B, T)
        return logits, values


def make_accelerator():
    """An Accelerator on the lab's device. On a machine without a GPU it gets cpu=True, which also
    lets several CPU processes (from torchrun or `accelerate launch --multi_gpu`) join one gloo group."""
    from accelerate import Accelerator

    from ..config import default_device

    return Accelerator(cpu=default_device().type == "cpu")


def reset_accelerate_state() -> None:
    """Forget Accelerate's process-wide state after a transformers Trainer (TRL's DPOTrainer, SFTTrainer).

    A Trainer with bf16=True leaves AcceleratorState at mixed_precision="bf16", and every later
    Accelerator in the same process (a PPO run in the same notebook or test session) would inherit
    that autocast silently: PPO's fp32 log-probs would be computed in bf16."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)


def add_lora(model, config: PPOConfig):
    """Wrap a causal LM with a fresh LoRA adapter (PEFT, task CAUSAL_LM); a PeftModel is kept as it is."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(model, PeftModel):
        return model
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (eval mode does this too; we also train in eval mode)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.eval()
