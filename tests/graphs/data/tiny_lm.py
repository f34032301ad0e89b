"""A tokenizer and a randomly initialised causal LM small enough to train a step on CPU in a second.

Built in code, nothing downloaded: a word-level tokenizer over the words of the rows it will see (so
no token is unknown), with a chat template that renders a prompt the same way alone and followed by a
completion, and a one-layer Llama with 16-dimensional hidden states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|> ' + m['content'] + ' <|end|> ' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}")


def texts_of(rows: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """Every message content and plain string value of the rows."""
    for row in rows:
        for value in row.values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):
                yield from (m["content"] for m in value if isinstance(m, Mapping) and "content" in m)


def tiny_tokenizer(texts: Iterable[str]) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace()
    words = sorted({w for text in texts for w, _ in split.pre_tokenize_str(text)})
    vocab = {token: i for i, token in enumerate(SPECIAL)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = split
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>",
                                        bos_token="<s>", eos_token="</s>", additional_special_tokens=SPECIAL[4:])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_model(tokenizer: Any, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))


def one_step_args(config_class: Any, output_dir: str, **extra: Any) -> Any:
    """Trainer arguments for a single optimisation step on CPU, logging nothing anywhere."""
    return config_class(output_dir=output_dir, max_steps=1, per_device_train_batch_size=2, report_to="none",
                        save_strategy="no", use_cpu=True, logging_steps=1, max_length=128,
                        disable_tqdm=True, **extra)
