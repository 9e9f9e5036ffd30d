"""Compression: passes that turn a model into variants (quantized, pruned, distilled).

Public entry points:

- `edgebench.compress.api.make_variants` — many single-pass variants from an fp32 parent (the demo uses it);
- `edgebench.compress.api.build_variant` / `resolve_chain` — one variant from a pass chain;
- `edgebench.compress.recipe.load_recipe` / `run_recipe` — what `edgebench compress RECIPE` runs;
- `edgebench.compress.passes` — the `Pass` base class and registry (`all_passes`, `get_pass`);
- `edgebench.compress.variant` — `Variant`, `save_variant`, `load_variant`, `list_variants`.
"""
