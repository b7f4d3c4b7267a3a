"""Known advisories in the installed packages: pip-audit where its vulnerability service answers, else the floors.

pip-audit (`--strict`: a package it cannot look up fails) asks PyPI's
per-version JSON for each installed package. Where that service does not
answer (a machine that reaches only a package mirror, as CI's does), every
package comes back "not found"; then this script says so in one line and
checks that every installed dependency meets the floors in pyproject.toml,
which are set above the versions with known advisories (docs/security.md).
Exit status 1 when a known advisory or a version below its floor is found.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "Dependency not found on PyPI and could not be audited"


def _pip_audit(requirements: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip_audit", "--strict", "--no-deps", "--disable-pip", "--progress-spinner", "off"]
    return subprocess.run([*command, "-r", "/dev/stdin"], input=requirements, capture_output=True, text=True)


def audit_with_pip_audit() -> int | None:
    """pip-audit's exit status, or None when its service cannot be reached from here (asked about Keras first)."""
    if UNREACHABLE in _pip_audit(f"keras=={metadata.version('keras')}\n").stderr:
        return None
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout
    build_tools = ("pip==", "setuptools==", "wheel==")
    result = _pip_audit("\n".join(line for line in frozen.splitlines() if not line.lower().startswith(build_tools)))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def check_floors() -> int:
    """1 when an installed dependency (with its extras' test and lint tools) is below pyproject.toml's floor."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    below = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # an extra that is not installed here
        if not requirement.specifier.contains(installed, prereleases=True):
            below.append(f"{requirement.name} {installed} (needs {requirement.specifier})")
    if below:
        print("audit: below the advisory floors in pyproject.toml: " + "; ".join(below))
        return 1
    print(f"audit: every installed dependency meets its floor in pyproject.toml ({len(requirements)} requirements)")
    return 0


def main() -> int:
    """pip-audit's verdict, or the floors' where pip-audit cannot look anything up."""
    status = audit_with_pip_audit()
    if status is not None:
        return status
    print("audit: pip-audit's vulnerability service does not answer from this machine; checking the floors instead")
    return check_floors()


if __name__ == "__main__":
    sys.exit(main())
