"""A tiny random Llama and a byte-level tokenizer with a chat template: fast stand-ins for
SmolLM2 in unit tests (same code paths, microseconds per token)."""
import torch


def tiny_tokenizer():
    """259 tokens: the 256 bytes plus <|endoftext|> (pad), <|im_start|>, <|im_end|> (eos)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=["<|im_start|>"])
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    tok.padding_side = "left"
    return tok


def tiny_llama(seed: int = 0, vocab_size: int = 259):
    """A 2-layer Llama (hidden 32, grouped KV heads so q_proj and v_proj differ in shape), fp32, eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=256, eos_token_id=258, bos_token_id=257)
    return LlamaForCausalLM(config).eval()


SOUP_CODES = ["P1A", "P1B", "P2A"]


def three_soup_adapters(root, lora_alpha: int = 32):
    """Three random LoRA adapters for the tiny Llama (A and B non-zero), r = 16, 16 and 8 on q_proj and
    v_proj: different ranks are fine for a soup. Returns {code: folder}."""
    from rlphf_lab import soups

    dirs = soups.random_lora_adapters(tiny_llama(), SOUP_CODES[:2], root, r=16, lora_alpha=lora_alpha, std=0.1, seed=1)
    dirs |= soups.random_lora_adapters(tiny_llama(), SOUP_CODES[2:], root, r=8, lora_alpha=lora_alpha, std=0.1, seed=2)
    return dirs


# soup weights that must be refused, with a piece of the message that says why
BAD_SOUP_WEIGHTS = [
    ({"P1A": -0.5, "P1B": 1}, "negative"),
    ({"P1A": float("nan")}, "finite"),
    ({"P1A": float("inf")}, "finite"),
    ({"P1A": 0, "P1B": 0.0}, "All weights are zero"),
    ({"P3B": 1}, r"not loaded.*P1A"),
    ({}, "non-empty"),
    ({"P1A": "lots"}, "not a number"),
    (["P1A"], "non-empty dict"),
]
