"""The contract's work formulas against torch's own FLOP counter on the real modules."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from klein_bench.backends.diffusers import tiny  # noqa: E402
from klein_bench.contract import models  # noqa: E402

KLEIN_4B = models.KLEIN_4B.architecture


def _counted(call) -> int:
    # The math backend runs attention as matmuls the counter sees; CPU flash attention
    # would go uncounted.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def _counted_image(entry, steps: int | None = None) -> tuple[int, float]:
    """The FLOPs torch counts for one image of a tiny variant, and the registry's work."""
    protocol = entry.protocol
    steps = steps or protocol.steps
    pipe = tiny.build_pipeline(entry.architecture, cfg=protocol.cfg, dtype=torch.float32)
    expected = entry.work(width=entry.width, height=entry.height, steps=steps)
    counted = _counted(
        lambda: pipe(
            prompt="a cat",
            width=entry.width,
            height=entry.height,
            num_inference_steps=steps,
            guidance_scale=protocol.guidance_scale,
            max_sequence_length=protocol.max_sequence_length,
            text_encoder_out_layers=entry.architecture.text_encoder.out_layers,
        )
    )
    return counted, expected.total_flop


@pytest.mark.parametrize("slug", ["klein-tiny-random", "klein-9b-tiny-random"])
def test_a_tiny_variants_counted_work_per_image_is_the_registrys(slug):
    counted, expected = _counted_image(models.MODELS[slug])

    assert counted == pytest.approx(expected, rel=1e-9)


def test_with_guidance_the_counted_work_has_two_transformer_passes_and_two_prompts():
    base = models.KLEIN_BASE_TINY
    # Fewer steps than the protocol's 50: the passes per step are what is checked.
    counted, expected = _counted_image(base, steps=3)
    distilled = models.KLEIN_TINY.work(width=64, height=64, steps=3)
    guided = base.work(width=64, height=64, steps=3)

    assert counted == pytest.approx(expected, rel=1e-9)
    assert guided.transformer_flop == 2 * distilled.transformer_flop
    assert guided.text_encoder_flop == 2 * distilled.text_encoder_flop


@pytest.mark.parametrize(
    ("slug", "tflop"), [("flux-2-klein-4b", 34.82), ("flux-2-klein-9b", 75.51)]
)
def test_the_full_size_transformer_step_counted_on_the_meta_device_is_the_formula(slug, tflop):
    architecture = models.MODELS[slug].architecture
    components = tiny.build_components(architecture, device="meta", dtype=torch.bfloat16)
    image_tokens, text_tokens = 4096, models.MODELS[slug].protocol.max_sequence_length
    context = architecture.transformer.joint_attention_dim
    with torch.device("meta"):
        inputs = {
            "hidden_states": torch.zeros(1, image_tokens, 128, dtype=torch.bfloat16),
            "encoder_hidden_states": torch.zeros(1, text_tokens, context, dtype=torch.bfloat16),
            "timestep": torch.zeros(1),
            "img_ids": torch.zeros(1, image_tokens, 4),
            "txt_ids": torch.zeros(1, text_tokens, 4),
            "guidance": None,
        }
        counted = _counted(lambda: components["transformer"](**inputs))

    assert counted == architecture.transformer.step_flop(image_tokens, text_tokens)
    assert counted == pytest.approx(tflop * 1e12, rel=1e-3)


@pytest.mark.parametrize("slug", [s for s, m in models.MODELS.items() if m.built_in])
def test_the_tiny_variants_parameter_counts_are_the_built_modules(slug):
    architecture = models.MODELS[slug].architecture

    assert tiny.parameter_counts(architecture) == architecture.parameters


def test_klein_4b_at_the_protocol_needs_about_139_tflop_in_the_transformer():
    protocol_work = models.KLEIN_4B.work(width=1024, height=1024, steps=4)

    assert protocol_work.transformer_flop / 1e12 == pytest.approx(139.3, abs=0.05)
    assert protocol_work.text_encoder_flop / 1e12 == pytest.approx(4.27, abs=0.01)
    assert protocol_work.vae_decode_flop / 1e12 == pytest.approx(10.47, abs=0.01)
    # An RTX 4090's dense BF16 peak is 165.2 TFLOPS.
    assert protocol_work.bound_seconds(165.2) == pytest.approx(0.843, abs=0.001)


def test_the_full_size_vae_decode_counted_on_the_meta_device_is_the_contracts_figure():
    from diffusers import AutoencoderKLFlux2

    with torch.device("meta"):
        vae = AutoencoderKLFlux2(**tiny.vae_config(KLEIN_4B)).to(torch.bfloat16)
        latents = torch.zeros(1, 32, 128, 128, dtype=torch.bfloat16)
        counted = _counted(lambda: vae.decode(latents))

    assert counted == KLEIN_4B.vae.decode_flop_per_pixel * 1024 * 1024


def test_the_base_4b_carries_twice_the_transformer_work_per_step_of_the_distilled():
    distilled = models.KLEIN_4B.work(width=1024, height=1024, steps=1)
    base = models.KLEIN_BASE_4B.work(width=1024, height=1024, steps=1)
    per_image = models.KLEIN_BASE_4B.work(width=1024, height=1024, steps=50)

    assert base.transformer_flop == 2 * distilled.transformer_flop
    # 50 steps, two passes each: about 3.5 PFLOP an image.
    assert per_image.transformer_flop / 1e12 == pytest.approx(3482, abs=1)
