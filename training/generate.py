"""The `hf` generator: a local transformers causal LM (plus an optional PEFT adapter), batched with left padding."""

from pathlib import Path
from typing import ClassVar, Sequence

from rater.core.domain import ItemView
from rater.generators.base import Generator, generate_with_loop
from training.models import device, load_model, load_tokenizer

INSTRUCTION_END = "</true>\n"


def split_prompt(prompt: str) -> tuple[str, str]:
    """(instruction, found-so-far tags) of a loop prompt."""
    cut = prompt.index(INSTRUCTION_END) + len(INSTRUCTION_END)
    return prompt[:cut], prompt[cut:]


def model_input(tokenizer, prompt: str) -> str:
    """The chat template wraps the instruction (as at training); the tags found so far continue the answer."""
    instruction, found = split_prompt(prompt)
    if getattr(tokenizer, "chat_template", None):
        wrapped = tokenizer.apply_chat_template([{"role": "user", "content": instruction}], tokenize=False,
                                                add_generation_prompt=True)
        return wrapped + found
    return (tokenizer.bos_token or "") + prompt


class HFGenerator(Generator):
    name: ClassVar[str] = "hf"
    default_batch_size: ClassVar[int] = 8

    def __init__(self, model: Path | str, adapter: Path | str | None = None, *, temperature: float = 0.7,
                 top_p: float = 0.95, max_new_tokens: int = 128, seed: int = 0, load_in_4bit: bool = False) -> None:

        self.tokenizer = load_tokenizer(model, padding_side="left")
        self.model = load_model(model, quantize=load_in_4bit and device().startswith("cuda"))
        if adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(adapter))
        self.model.eval()
        self.sampling = dict(do_sample=temperature > 0, max_new_tokens=max_new_tokens,
                             pad_token_id=self.tokenizer.pad_token_id)
        if temperature > 0:
            self.sampling.update(temperature=temperature, top_p=top_p)
        self.seed = seed

    @classmethod
    def from_options(cls, *, model=None, adapter=None, temperature: float = 0.7, top_p: float = 0.95,
                     max_new_tokens: int = 128, seed: int = 0, load_in_4bit: bool = False, **_ignored) -> "HFGenerator":
        from rater.core.errors import InputError

        if not model:
            raise InputError("The hf generator needs --model (a local model folder).", "pass --model PATH")
        return cls(model, adapter, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                   load_in_4bit=load_in_4bit)

    def complete_batch(self, prompts: list[str]) -> list[str]:
        import torch

        texts = [model_input(self.tokenizer, p) for p in prompts]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        torch.manual_seed(self.seed)
        self.seed += 1
        with torch.no_grad():
            output = self.model.generate(**batch, **self.sampling)
        new = output[:, batch["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    async def _complete(self, prompts: list[str]) -> list[str]:
        return self.complete_batch(prompts)

    async def generate(self, items: Sequence[ItemView], num: int) -> list[list[str]]:
        return await generate_with_loop(items, num, self._complete)
