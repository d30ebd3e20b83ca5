"""The pipelines built in code from the registry's architectures: the tiny variants run the
real Flux2KleinPipeline code path, the synthetic ones have the published architectures."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers", reason="the pipelines need klein-bench[diffusers]")

from klein_bench.backends.diffusers import tiny  # noqa: E402
from klein_bench.contract import models  # noqa: E402

TINY = models.KLEIN_TINY.architecture
ARCHITECTURES = {
    slug: entry.architecture for slug, entry in models.MODELS.items() if not entry.built_in
}
TINY_ARCHITECTURES = {
    slug: entry.architecture for slug, entry in models.MODELS.items() if entry.built_in
}


def _generate(pipe, seed: int = 0):
    return pipe(
        prompt="A cat holding a sign that says hello world",
        height=64,
        width=64,
        num_inference_steps=4,
        guidance_scale=1.0,
        max_sequence_length=512,
        text_encoder_out_layers=TINY.text_encoder.out_layers,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    ).images


def test_the_tiny_pipeline_is_the_real_klein_pipeline():
    from diffusers import Flux2KleinPipeline

    pipe = tiny.build_pipeline(TINY)

    assert isinstance(pipe, Flux2KleinPipeline)
    assert pipe.config.is_distilled is True
    assert pipe.vae_scale_factor == 8
    assert (
        type(pipe.tokenizer).__name__ == "Qwen2Tokenizer"
        or "Qwen2" in type(pipe.tokenizer).__name__
    )


def test_the_tiny_pipeline_is_deterministic_for_a_seed():
    first = _generate(tiny.build_pipeline(TINY, seed=0))
    second = _generate(tiny.build_pipeline(TINY, seed=0))

    assert first.shape == (1, 64, 64, 3)
    assert (first == second).all()


def test_the_tiny_pipeline_leaves_the_callers_random_state_alone():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)

    tiny.build_pipeline(TINY, seed=7)

    assert torch.equal(torch.rand(3), expected)
    assert torch.get_default_dtype() == torch.float32


def test_the_tokenizer_pads_to_the_protocols_sequence_length_with_the_chat_template():
    tokenizer = tiny.build_tokenizer()

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "A cat"}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    encoded = tokenizer(text, padding="max_length", truncation=True, max_length=512)

    assert (
        text == "<|im_start|>user\nA cat<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert len(encoded["input_ids"]) == 512
    assert encoded["input_ids"][-1] == tokenizer.pad_token_id
    assert sum(encoded["attention_mask"]) < 512


def test_a_model_run_with_guidance_is_built_undistilled():
    pipe = tiny.build_pipeline(models.KLEIN_BASE_TINY.architecture, cfg=True)

    assert pipe.config.is_distilled is False


@pytest.mark.parametrize("architecture", [*ARCHITECTURES.values(), *TINY_ARCHITECTURES.values()],
                         ids=[*ARCHITECTURES, *TINY_ARCHITECTURES])  # fmt: skip
def test_every_registry_architecture_keeps_the_pipelines_invariants(architecture):
    transformer = tiny.transformer_config(architecture)
    text_encoder = tiny.text_encoder_config(architecture)
    out_layers = architecture.text_encoder.out_layers
    assert sum(transformer["axes_dims_rope"]) == transformer["attention_head_dim"]
    assert transformer["in_channels"] == 4 * tiny.vae_config(architecture)["latent_channels"]
    assert transformer["joint_attention_dim"] == len(out_layers) * text_encoder["hidden_size"]
    assert max(out_layers) <= text_encoder["num_hidden_layers"]


def test_the_9b_is_the_published_configuration():
    transformer = tiny.transformer_config(models.KLEIN_9B.architecture)
    text_encoder = tiny.text_encoder_config(models.KLEIN_9B.architecture)

    assert {k: transformer[k] for k in ("num_layers", "num_single_layers", "num_attention_heads",
                                       "attention_head_dim", "joint_attention_dim")} == {
        "num_layers": 8, "num_single_layers": 24, "num_attention_heads": 32,
        "attention_head_dim": 128, "joint_attention_dim": 12288,
    }  # fmt: skip
    assert (text_encoder["hidden_size"], text_encoder["intermediate_size"]) == (4096, 12288)
    assert text_encoder["tie_word_embeddings"] is False


@pytest.mark.parametrize("slug", list(ARCHITECTURES))
def test_the_registrys_parameter_counts_are_the_built_modules(slug):
    # Built on the meta device: counts without allocating the weights.
    architecture = ARCHITECTURES[slug]

    assert tiny.parameter_counts(architecture) == architecture.parameters


def test_the_synthetic_9b_has_about_17_billion_parameters():
    counts = models.KLEIN_9B.architecture.parameters

    assert counts["transformer"] == pytest.approx(9.08e9, rel=0.01)
    # Qwen3-8B, its embeddings untied from the LM head.
    assert counts["text_encoder"] == pytest.approx(8.19e9, rel=0.01)
