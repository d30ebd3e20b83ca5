"""The contract between the klein-bench agent and the platform.

Everything both sides must agree on, and nothing else:

- `wire`: the signed envelope (RFC 8785 canonical JSON, Ed25519);
- `protocol`: the versioned generation protocols and their hashes;
- `schema`: the result payload's JSON Schema (`schemas/result-v1.json`);
- `stats`: the summary statistics both sides compute from the same numbers;
- `figures`: the names of a result's figures, what each one is and where it comes from,
  and the closed sets of outcomes, stages, runtimes, precisions and offloads;
- `catalog`: the models the agent measures and the presets it runs them in;
- `work`: a model's floating-point work per image and its weight bytes, from its
  architecture (the physical bound on speed, and the basis of estimates).

The server imports this package and no other part of the agent; the import-linter
contract in pyproject.toml enforces it. It depends on neither Django nor torch.
"""
