"""The pipelines built in code: the tiny one runs the real Flux2KleinPipeline code path,
the synthetic one has Klein 4B's published architecture."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers", reason="the pipelines need klein-bench[diffusers]")

from klein_bench.backends.diffusers import tiny  # noqa: E402


def _generate(pipe, seed: int = 0):
    return pipe(
        prompt="A cat holding a sign that says hello world",
        height=64,
        width=64,
        num_inference_steps=4,
        guidance_scale=1.0,
        max_sequence_length=512,
        text_encoder_out_layers=tiny.TINY_TEXT_ENCODER_OUT_LAYERS,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    ).images


def test_the_tiny_pipeline_is_the_real_klein_pipeline():
    from diffusers import Flux2KleinPipeline

    pipe = tiny.build_tiny_pipeline()

    assert isinstance(pipe, Flux2KleinPipeline)
    assert pipe.config.is_distilled is True
    assert pipe.vae_scale_factor == 8
    assert (
        type(pipe.tokenizer).__name__ == "Qwen2Tokenizer"
        or "Qwen2" in type(pipe.tokenizer).__name__
    )


def test_the_tiny_pipeline_is_deterministic_for_a_seed():
    first = _generate(tiny.build_tiny_pipeline(seed=0))
    second = _generate(tiny.build_tiny_pipeline(seed=0))

    assert first.shape == (1, 64, 64, 3)
    assert (first == second).all()


def test_the_tiny_pipeline_leaves_the_callers_random_state_alone():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)

    tiny.build_tiny_pipeline(seed=7)

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


def test_the_tiny_configs_keep_the_architectures_invariants():
    transformer = tiny.TINY_TRANSFORMER_CONFIG
    assert sum(transformer["axes_dims_rope"]) == transformer["attention_head_dim"]
    assert transformer["in_channels"] == 4 * tiny.TINY_VAE_CONFIG["latent_channels"]
    assert (
        transformer["joint_attention_dim"]
        == len(tiny.TINY_TEXT_ENCODER_OUT_LAYERS) * (tiny.TINY_TEXT_ENCODER_CONFIG["hidden_size"])
    )
    assert (
        max(tiny.TINY_TEXT_ENCODER_OUT_LAYERS) <= tiny.TINY_TEXT_ENCODER_CONFIG["num_hidden_layers"]
    )


def test_the_klein_4b_configs_are_consistent():
    transformer = tiny.KLEIN4B_TRANSFORMER_CONFIG
    assert sum(transformer["axes_dims_rope"]) == transformer["attention_head_dim"]
    assert transformer["in_channels"] == 4 * tiny.KLEIN4B_VAE_CONFIG["latent_channels"]
    assert (
        transformer["joint_attention_dim"]
        == len(tiny.KLEIN4B_TEXT_ENCODER_OUT_LAYERS)
        * (tiny.KLEIN4B_TEXT_ENCODER_CONFIG["hidden_size"])
    )
    assert transformer["num_attention_heads"] * transformer["attention_head_dim"] == 3072


def test_the_synthetic_architecture_has_klein_4bs_parameter_counts():
    # Built on the meta device: counts without allocating 16 GB.
    counts = tiny.parameter_counts()

    assert counts["transformer"] == pytest.approx(3.876e9, rel=0.01)
    assert counts["text_encoder"] == pytest.approx(4.022e9, rel=0.01)
    assert counts["vae"] == pytest.approx(84e6, rel=0.01)
