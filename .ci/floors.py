"""Print a pip constraints file holding every direct dependency at its floor in pyproject.toml.

    python .ci/floors.py [EXTRA ...] > floors.txt        (the extras default to: test)

The runtime dependencies and the named extras' come out as ``name==floor``, so installing with
``PIP_CONSTRAINT=floors.txt`` tests exactly the oldest versions the project says it supports; their
own dependencies stay free. The floors live in pyproject.toml alone: this reads them from there.

It refuses, naming the requirement, a dependency with no floor (``name``, ``name<2``: a version CI
never installs is a guess) and a package whose floor differs between two places it is declared
(``redis`` in the test, redis and bench extras).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)
_FLOOR = re.compile(r"^(?:>=|==)\s*(?P<version>[0-9][0-9A-Za-z.+!-]*)$")


def _normal(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(pyproject: dict[str, Any], extras: list[str]) -> list[str]:
    """``name==floor`` lines (and any marker) for the dependencies and ``extras``, by name."""
    project: dict[str, Any] = pyproject["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        sys.exit(f"floors.py: no such extra in pyproject.toml: {', '.join(unknown)}")
    wanted = {"dependencies", *extras}
    places = {"dependencies": project.get("dependencies", []), **optional}
    seen: dict[str, tuple[str, str]] = {}
    lines: dict[str, str] = {}
    for place, requirements in places.items():
        for requirement in requirements:
            match = _REQUIREMENT.match(requirement.strip())
            if match is None:
                sys.exit(f"floors.py: cannot read the requirement {requirement!r} ({place})")
            name, spec = _normal(match["name"]), match["spec"].replace(" ", "")
            if name == _normal(project["name"]):
                continue
            if name in seen and seen[name][1] != spec:
                other = seen[name][0]
                sys.exit(
                    f"floors.py: {name} is {seen[name][1]!r} in {other} but {spec!r} in {place}: "
                    "one floor, one version"
                )
            seen[name] = (place, spec)
            floor = next(filter(None, (_FLOOR.match(part) for part in spec.split(","))), None)
            if floor is None:
                sys.exit(f"floors.py: {requirement!r} ({place}) names no floor (>=X or ==X)")
            if place in wanted:
                marker = f"; {match['marker'].strip()}" if match["marker"] else ""
                lines[name] = f"{name}=={floor['version']}{marker}"
    return [lines[name] for name in sorted(lines)]


def main() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    print("\n".join(floors(pyproject, sys.argv[1:] or ["test"])))


if __name__ == "__main__":
    main()
