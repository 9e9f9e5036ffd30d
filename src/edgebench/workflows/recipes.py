"""Recipes as `edgebench compress` and `edgebench nightly` load them: one loader for both.

`edgebench.compress.recipe.load_recipe` cannot parse a model's ``inputs`` table itself (the
input-spec parser is `edgebench.bench.inputs`, a layer above `compress`), so it takes the
parser as an argument; this module is the one place that hands it over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.bench import inputs
from edgebench.compress.recipe import Recipe, load_recipe


def input_specs(specs: dict[str, str], base: Path) -> dict[str, Any]:
    """A recipe's ``[models.M] inputs`` as the agent's specs (the forms of `edgebench run --input`)."""
    return inputs.job_block(inputs.parse_inputs([f"{k}={v}" for k, v in specs.items()], base))


def load(path: Path, out: Path | None = None) -> Recipe:
    """Parse and check a recipe with its models' input specs (see `load_recipe`).

    Raises:
        ConfigError: a bad recipe or input spec, naming the file, table and field.
        ModelError: a file that is not a model, or a pass that cannot apply to it.
        DataError: data that does not fit a model.
    """
    recipe = load_recipe(path, out, input_specs=input_specs)
    for plan in recipe.models:  # as the manifests record them for `run`: a .npy path absolute, not the recipe's
        plan.inputs = inputs.parse_inputs([f"{k}={v}" for k, v in plan.inputs.items()], Path(path).parent)
    return recipe
