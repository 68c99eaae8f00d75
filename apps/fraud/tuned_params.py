"""The model parameters `streamsense fraud tune` chose (tuning.py), as training and the
cascade read them: ``tuned.json`` beside this file, committed with the code that uses it.

Only the searched parameters live in the file; the fixed ones (seed, determinism, threads)
are here, so a tuned model is reproducible bit for bit on any machine. The file also keeps
how the choice was made (the folds, each candidate's validation scores), for the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from streamsense.errors import ConfigError

TUNED_PATH = Path(__file__).resolve().with_name("tuned.json")

# Not searched: what makes LightGBM deterministic and its run affordable on two cores.
FIXED_HEAVY_PARAMS: dict[str, Any] = {
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "random_state": 7,
    "deterministic": True,
    "force_col_wise": True,
    "n_jobs": 2,
    "verbose": -1,
}


class Tuned(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The chosen heavy-model parameters and heavy band, and the validation behind them."""

    heavy_params: dict[str, float | int]
    heavy_band: tuple[float, float]
    validation: dict[str, Any] = msgspec.field(default_factory=dict)


def heavy_params(tuned: Tuned) -> dict[str, Any]:
    """LightGBM's full parameters: the tuned ones over the fixed ones."""
    return {**FIXED_HEAVY_PARAMS, **tuned.heavy_params}


def load_tuned(path: Path = TUNED_PATH) -> Tuned:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Tuned)
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing: `streamsense fraud tune --transactions FILE` writes it"
        ) from None
    except msgspec.ValidationError as error:
        raise ConfigError(f"{path}: {error}") from None


def save_tuned(tuned: Tuned, path: Path = TUNED_PATH) -> None:
    text = msgspec.json.format(msgspec.json.encode(tuned), indent=2)
    path.write_bytes(text + b"\n")
