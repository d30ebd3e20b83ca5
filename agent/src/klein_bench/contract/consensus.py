"""The image every honest run of a configuration makes, and when an image strays from it.

Under the standard protocol every timed image has a fixed prompt and seed, so honest runs
of one model, runtime and precision make near-identical images, whatever the card; the
agent records the 64-bit perceptual hash (pHash) of the first one. The consensus is the
hash most independent contributors' images lie near: the centre of the largest cluster,
once at least MIN_CONTRIBUTORS contributors, a majority of them, are in it. An image more
than THRESHOLD_BITS from it is flagged: usually a wrong VAE or text encoder file.

Runtimes are kept apart: ComfyUI draws its starting noise differently from diffusers, so
the same seed is another image. The server and the agent (before it uploads) both use
these functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# pHashes of the same picture rendered on different cards differ in a few bits; unrelated
# images differ in about 32 of 64.
THRESHOLD_BITS = 10
# No consensus before this many independent contributors agree on it.
MIN_CONTRIBUTORS = 3
STRAYS = (
    "image differs from what other contributors got: wrong VAE or text encoder? "
    "Check the model files."
)


def hamming(a: str, b: str) -> int:
    """How many of the 64 bits two hexadecimal hashes differ in."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def is_hash(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 16:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Consensus:
    phash: str
    # Independent contributors whose image lies within THRESHOLD_BITS of it, of how many.
    agreeing: int
    contributors: int

    def strays(self, phash: str) -> bool:
        return hamming(self.phash, phash) > THRESHOLD_BITS


def _representative(hashes: list[str]) -> str:
    """One contributor's vote: their most common hash (the smallest among ties)."""
    counts = Counter(hashes)
    return min(counts, key=lambda h: (-counts[h], h))


def find(hashes_by_contributor: Mapping[object, Iterable[str]]) -> Consensus | None:
    """The consensus of some contributors' image hashes, each contributor counted once;
    None until MIN_CONTRIBUTORS, and more than half of the contributors, agree."""
    votes = [
        _representative(valid)
        for hashes in hashes_by_contributor.values()
        if (valid := [h for h in hashes if is_hash(h)])
    ]
    if len(votes) < MIN_CONTRIBUTORS:
        return None
    counts = Counter(votes)

    def standing(centre: str) -> tuple[int, int, int]:
        near = [
            (other, n) for other, n in counts.items() if hamming(centre, other) <= THRESHOLD_BITS
        ]
        spread = sum(hamming(centre, other) * n for other, n in near)
        return (sum(n for _, n in near), counts[centre], -spread)

    # The centre of the largest cluster is a hash that was voted for (distinct hashes are
    # few: honest ones are mostly equal): the most voters near it, then the most votes for
    # it exactly, then the closest to the others; of any tie left, the smallest hash (max
    # keeps the first of equals).
    best = max(sorted(counts), key=standing)
    support = standing(best)[0]
    if support < MIN_CONTRIBUTORS or support * 2 <= len(votes):
        return None
    return Consensus(best, support, len(votes))
