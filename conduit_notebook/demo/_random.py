"""The demo data's random ids and times: Conduit-shaped ids from a generator, seeds as
integers, epoch milliseconds as the API's ISO-8601 strings."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

_ALPHABET = np.array(list("0123456789abcdefghjkmnpqrstvwxyz"))


_HEX = np.array(list("0123456789abcdef"))


def random_ids(rng: np.random.Generator, n: int, prefix: str, length: int = 30) -> np.ndarray:
    chars = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, length))]
    return np.char.add(prefix, chars.view(f"<U{length}").ravel())


def random_hex(rng: np.random.Generator, n: int, prefix: str, length: int) -> np.ndarray:
    chars = _HEX[rng.integers(0, 16, size=(n, length))]
    return np.char.add(prefix, chars.view(f"<U{length}").ravel())


def seed_int(seed: int) -> int:
    return seed % (2**63)


def iso(epoch_ms: int) -> str:
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
