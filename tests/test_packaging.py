"""The declared dependencies: true lower bounds, no upper caps, and the pins CI tests them at."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lows = {}
    for spec in project["dependencies"]:
        name, _, rest = re.match(r"([A-Za-z0-9_.-]+)\s*(>=\s*([^,;\s]+))?", spec).groups()
        if ";" not in spec:  # tomli: only below Python 3.11
            lows[name.lower()] = rest
    return lows


def test_every_dependency_has_a_lower_bound_and_no_cap():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    assert all(">=" in s and "<" not in s.split(";")[0] for s in specs), specs


def test_ci_pins_are_the_declared_lower_bounds():
    pins = dict(line.split("==") for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines()
                if line and not line.startswith("#"))

    def same(pin: str, low: str) -> bool:  # 2.2 is 2.2.0
        return pin.split(".")[:len(low.split("."))] == low.split(".") and set(pin.split(".")[len(low.split(".")):]) <= {"0"}

    declared = _declared()
    assert set(pins) == set(declared)
    assert all(same(pins[name], declared[name]) for name in declared), (pins, declared)
