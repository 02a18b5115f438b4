"""The hf generator on a tiny Mistral-architecture model built offline, with and without an adapter."""

import asyncio

import pytest

from rater.core.domain import ItemView
from rater.core.prompts import render_instruction
from training.generate import HFGenerator, model_input
from training.settings import resolve
from training.trainers import train_sft

ITEMS = [ItemView(i, f"Anna bor i Lund och har {i} katter.", "Var bor Anna?", "i Lund", ()) for i in range(3)]


@pytest.fixture
def tiny(tiny_model):
    return tiny_model


def test_prompt_is_the_published_instruction_inside_the_chat_template(tiny):
    generator = HFGenerator(tiny, temperature=0)
    instruction = render_instruction(ITEMS[0].context, ITEMS[0].question, ITEMS[0].answer)
    text = model_input(generator.tokenizer, instruction + "<false> i Malmö </false>\n")
    assert text == "<s>[INST] " + instruction + " [/INST]<false> i Malmö </false>\n"
    generator.tokenizer.chat_template = None
    assert model_input(generator.tokenizer, instruction) == "<s>" + instruction


def test_batched_generation_with_left_padding_matches_one_by_one(tiny):
    generator = HFGenerator(tiny, temperature=0, max_new_tokens=12)
    assert generator.tokenizer.padding_side == "left"
    prompts = [render_instruction(i.context, i.question, i.answer) for i in ITEMS]
    prompts[1] = prompts[1].replace("Anna", "Anna Karin Svensson")  # different lengths need padding
    batched = generator.complete_batch(prompts)
    single = [generator.complete_batch([p])[0] for p in prompts]
    assert batched == single and all(isinstance(t, str) for t in batched)


def test_generate_with_and_without_an_adapter(tiny, cli, engine, tmp_path):
    cli("demo")
    from training.data import sft_from_store
    adapter = tmp_path / "sft"
    train_sft(tiny, sft_from_store(engine, split="all"), adapter, resolve("sft", max_steps=2, learning_rate=1e-2))
    plain = asyncio.run(HFGenerator(tiny, temperature=0, max_new_tokens=16).generate(ITEMS, 2))
    adapted_model = HFGenerator(tiny, adapter, temperature=0, max_new_tokens=16)
    assert type(adapted_model.model).__name__ == "PeftModelForCausalLM"
    adapted = asyncio.run(adapted_model.generate(ITEMS, 2))
    assert len(plain) == len(adapted) == 3
    import torch
    tokens = adapted_model.tokenizer("<context> a </context>", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        with_adapter = adapted_model.model(tokens).logits
        with adapted_model.model.disable_adapter():
            without = adapted_model.model(tokens).logits
    assert (with_adapter - without).abs().max() > 1e-4  # the trained adapter changes the model's predictions


def test_hf_generator_needs_a_model_folder(tmp_path):
    with pytest.raises(Exception, match="needs --model"):
        HFGenerator.from_options()
    with pytest.raises(Exception, match="config.json missing"):
        HFGenerator(tmp_path)
