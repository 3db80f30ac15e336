"""Issue 14 polish: installing is quiet (no setuptools deprecation warnings: the
licence is an SPDX string with license-files, PEP 639) and the man page is
installed where ``man zerotrust-admin`` finds it (<prefix>/share/man/man1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile

from tests.conftest import ROOT


def test_pyproject_uses_an_spdx_licence_and_installs_the_man_page():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # a string, not the deprecated table
    assert project["project"]["license-files"] == ["LICENSE"] and (ROOT / "LICENSE").is_file()
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    data = project["tool"]["setuptools"]["data-files"]
    assert data["share/man/man1"] == ["man/zerotrust-admin.1"] and (ROOT / "man" / "zerotrust-admin.1").is_file()


def test_a_wheel_builds_without_deprecation_warnings_and_carries_the_man_page(tmp_path):
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in files:
        if name and not name.startswith(("tests/", "benchmarks/")) and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    for name in ("pyproject.toml", "LICENSE"):  # as in the working tree
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--disable-pip-version-check", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "SetuptoolsDeprecationWarning" not in log and "is deprecated" not in log, [l for l in log.splitlines() if "eprecat" in l]
    (wheel,) = out.glob("zerotrust_admin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".data/data/share/man/man1/zerotrust-admin.1") for n in names), names[-10:]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta
