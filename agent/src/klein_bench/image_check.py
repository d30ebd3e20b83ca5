"""Before uploading: does this run's image look like what other contributors got?

The platform keeps, per protocol, runtime and precision, the consensus perceptual hash of
the first timed image (klein_bench.contract.consensus) and leaves results whose image
strays from it out of its medians. The agent asks for it first and warns in one sentence,
so a wrong VAE or text encoder file is found before the result is sent, not after.
"""

from __future__ import annotations

from typing import Any

from klein_bench.contract import consensus


def stray_warning(payload: dict[str, Any], answer: dict[str, Any] | None) -> str | None:
    """One sentence when the payload's image hash strays from the server's consensus for
    its configuration; None when it agrees, or there is nothing to compare with."""
    phash = (payload.get("evidence") or {}).get("phash")
    if not consensus.is_hash(phash) or payload.get("synthetic") or not isinstance(answer, dict):
        return None
    c = payload["configuration"]
    wanted = (payload["protocol"]["id"], c["runtime"], c["precision"])
    threshold = answer.get("threshold_bits")
    if not isinstance(threshold, int):
        threshold = consensus.THRESHOLD_BITS
    for image in answer.get("images") or []:
        if not isinstance(image, dict) or not consensus.is_hash(image.get("phash")):
            continue
        if (image.get("protocol"), image.get("runtime"), image.get("precision")) != wanted:
            continue
        distance = consensus.hamming(image["phash"], phash)
        if distance <= threshold:
            return None
        return (
            f"Your image differs from what {image.get('n_agreeing', 'most')} other contributors "
            f"got in {c['precision']} on {c['runtime']} ({distance} of 64 hash bits): a wrong "
            "VAE or text encoder file? The result will be flagged and left out of the medians "
            "until the files are fixed."
        )
    return None
