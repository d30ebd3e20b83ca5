"""The perceptual hash and thumbnail that show a model really ran."""

from __future__ import annotations

import base64
import io

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from klein_bench import evidence  # noqa: E402


def _gradient(size: int = 256) -> object:
    x = np.linspace(0, 255, size)
    pixels = np.add.outer(x, x) / 2
    rgb = np.stack([pixels, pixels * 0.5, 255 - pixels], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def _blobs(seed: int, size: int = 256) -> object:
    """Smooth random shapes: an image with its energy in the low frequencies, like a photo."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return small.resize((size, size), Image.Resampling.BICUBIC)


def _noise(size: int, seed: int = 0) -> object:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_phash_is_16_hex_characters_and_repeatable():
    value = evidence.phash(_gradient())

    assert len(value) == 16
    assert int(value, 16) >= 0
    assert evidence.phash(_gradient()) == value


def test_phash_barely_moves_for_a_resized_image_and_moves_a_lot_for_another():
    original = _blobs(seed=1)
    resized = original.resize((97, 97))

    assert evidence.hamming(evidence.phash(original), evidence.phash(resized)) <= 4
    assert evidence.hamming(evidence.phash(original), evidence.phash(_blobs(seed=2))) >= 16


def test_phash_matches_the_reference_dct_definition():
    # scipy.fftpack.dct(dct(x, axis=0), axis=1) with its default (unnormalised) scaling.
    pixels = np.arange(32 * 32, dtype=np.float64).reshape(32, 32) % 7
    n = np.arange(32)
    expected = np.array(
        [
            [2 * np.sum(pixels[:, j] * np.cos(np.pi * k * (2 * n + 1) / 64)) for j in range(32)]
            for k in range(32)
        ]
    )

    assert np.allclose(evidence._dct_matrix(32) @ pixels, expected)


def test_thumbnail_is_a_png_no_larger_than_128_pixels():
    encoded = evidence.thumbnail_png(_gradient(1024))

    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert image.format == "PNG"
    assert image.size == (128, 128)


def test_a_noise_thumbnail_stays_within_the_schema_limit():
    encoded = evidence.thumbnail_png(_noise(1024))

    assert len(encoded) <= evidence.THUMBNAIL_LIMIT
    assert Image.open(io.BytesIO(base64.b64decode(encoded))).size == (128, 128)


def test_a_small_image_keeps_its_size():
    encoded = evidence.thumbnail_png(_noise(64))

    assert Image.open(io.BytesIO(base64.b64decode(encoded))).size == (64, 64)


def test_no_image_means_no_evidence():
    assert evidence.evidence_section(None) is None
