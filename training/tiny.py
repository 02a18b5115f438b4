"""A tiny Mistral-architecture model and BPE tokenizer built offline (no hub), for tests and benchmarks."""

import json
from pathlib import Path

from rater.data.demo import demo_set_path

MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}")


def corpus() -> list[str]:
    """Training text for the tokenizer: the demo set and the prompt tags."""
    rows = [json.loads(line) for line in demo_set_path().read_text("utf-8").splitlines()]
    texts = [" ".join([r["context"], r["question"], r["answer"], *r["distractors"]]) for r in rows]
    return texts + ["<context> </context> <question> </question> <true> </true> <false> </false> [INST] [/INST]"] * 20


def build_tiny_model(path: Path, *, vocab_size: int = 512, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a randomly initialised MistralForCausalLM and its tokenizer (with a chat template) at `path`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.chat_template = MISTRAL_CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = MistralConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=2048, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                           pad_token_id=fast.pad_token_id, tie_word_embeddings=False,
                           initializer_range=0.3)  # wide enough output weights for LoRA to reach low losses
    model = MistralForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path
