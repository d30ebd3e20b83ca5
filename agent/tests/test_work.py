"""The contract's work formulas against torch's own FLOP counter on the real modules."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from klein_bench.backends.diffusers import tiny  # noqa: E402
from klein_bench.contract import work  # noqa: E402
from klein_bench.contract.protocol import CURRENT  # noqa: E402


def _counted(call) -> int:
    # The math backend runs attention as matmuls the counter sees; CPU flash attention
    # would go uncounted.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def test_the_tiny_pipelines_counted_work_per_image_is_the_formulas():
    pipe = tiny.build_tiny_pipeline(seed=0, dtype=torch.float32)
    expected = work.work_per_image(
        work.KLEIN_TINY,
        width=64,
        height=64,
        steps=CURRENT.steps,
        text_tokens=CURRENT.max_sequence_length,
    )

    counted = _counted(
        lambda: pipe(
            prompt="a cat",
            width=64,
            height=64,
            num_inference_steps=CURRENT.steps,
            guidance_scale=CURRENT.guidance_scale,
            max_sequence_length=CURRENT.max_sequence_length,
            text_encoder_out_layers=tiny.TINY_TEXT_ENCODER_OUT_LAYERS,
        )
    )

    assert counted == pytest.approx(expected.total_flop, rel=1e-9)


def test_the_full_size_transformer_step_counted_on_the_meta_device_is_the_formula():
    components = tiny.build_components(
        tiny.KLEIN4B_TRANSFORMER_CONFIG,
        tiny.KLEIN4B_TEXT_ENCODER_CONFIG,
        tiny.KLEIN4B_VAE_CONFIG,
        device="meta",
        dtype=torch.bfloat16,
    )
    image_tokens, text_tokens = 4096, CURRENT.max_sequence_length
    with torch.device("meta"):
        inputs = {
            "hidden_states": torch.zeros(1, image_tokens, 128, dtype=torch.bfloat16),
            "encoder_hidden_states": torch.zeros(1, text_tokens, 7680, dtype=torch.bfloat16),
            "timestep": torch.zeros(1),
            "img_ids": torch.zeros(1, image_tokens, 4),
            "txt_ids": torch.zeros(1, text_tokens, 4),
            "guidance": None,
        }
        counted = _counted(lambda: components["transformer"](**inputs))

    assert counted == work.KLEIN_4B.transformer.step_flop(image_tokens, text_tokens)
    assert counted == pytest.approx(34.82e12, rel=1e-3)


@pytest.mark.parametrize(
    ("architecture", "configs"),
    [
        (
            work.KLEIN_4B,
            (
                tiny.KLEIN4B_TRANSFORMER_CONFIG,
                tiny.KLEIN4B_TEXT_ENCODER_CONFIG,
                tiny.KLEIN4B_VAE_CONFIG,
            ),
        ),
        (
            work.KLEIN_TINY,
            (tiny.TINY_TRANSFORMER_CONFIG, tiny.TINY_TEXT_ENCODER_CONFIG, tiny.TINY_VAE_CONFIG),
        ),
    ],
    ids=["klein-4b", "tiny"],
)
def test_the_contracts_parameter_counts_are_the_built_modules(architecture, configs):
    assert tiny.parameter_counts(*configs) == architecture.parameters


def test_klein_4b_at_the_protocol_needs_about_139_tflop_in_the_transformer():
    protocol_work = work.work_per_image(
        work.KLEIN_4B, width=1024, height=1024, steps=4, text_tokens=512
    )

    assert protocol_work.transformer_flop / 1e12 == pytest.approx(139.3, abs=0.05)
    assert protocol_work.text_encoder_flop / 1e12 == pytest.approx(4.27, abs=0.01)
    assert protocol_work.vae_decode_flop / 1e12 == pytest.approx(10.47, abs=0.01)
    # An RTX 4090's dense BF16 peak is 165.2 TFLOPS.
    assert protocol_work.bound_seconds(165.2) == pytest.approx(0.843, abs=0.001)


def test_the_full_size_vae_decode_counted_on_the_meta_device_is_the_contracts_figure():
    from diffusers import AutoencoderKLFlux2

    with torch.device("meta"):
        vae = AutoencoderKLFlux2(**tiny.KLEIN4B_VAE_CONFIG).to(torch.bfloat16)
        latents = torch.zeros(1, 32, 128, 128, dtype=torch.bfloat16)
        counted = _counted(lambda: vae.decode(latents))

    assert counted == work.KLEIN_4B.vae.decode_flop_per_pixel * 1024 * 1024
