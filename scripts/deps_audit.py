"""Best-effort dependency vulnerability check for machines where pip-audit cannot run.

pip-audit asks PyPI's per-version endpoint (/pypi/NAME/VERSION/json) or OSV.
Where only the project endpoint (/pypi/NAME/json) is reachable, as on the
build machines of this project, that endpoint still lists the known
vulnerabilities of the *latest* release. So: every installed distribution that
is the latest release is audited through it; every other one is reported as
not audited, by name. Exit 1 if any vulnerability is found, 0 otherwise.

    .venv/bin/python scripts/deps_audit.py [--json]
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

# The project endpoint of PyPI's JSON API; ZT_PYPI_JSON_URL points it elsewhere
# (a mirror, or the test suite's loopback listener).
INDEX = os.environ.get("ZT_PYPI_JSON_URL", "https://pypi.org/pypi/{}/json")


def installed() -> dict[str, str]:
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and name not in ("zerotrust-admin", "pip", "setuptools"):
            found[name] = dist.version
    return found


def check(name: str, version: str) -> dict:
    try:
        with urllib.request.urlopen(INDEX.format(name), timeout=20) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        return {"name": name, "version": version, "audited": False, "why": f"index unreachable ({type(exc).__name__})"}
    latest = data.get("info", {}).get("version")
    if latest != version:
        return {"name": name, "version": version, "audited": False, "why": f"not the latest release ({latest})"}
    vulns = [v.get("id") for v in data.get("vulnerabilities") or []]
    return {"name": name, "version": version, "audited": True, "vulnerabilities": vulns}


def main(argv: list[str]) -> int:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = sorted(pool.map(lambda item: check(*item), installed().items()), key=lambda r: r["name"])
    audited = [r for r in results if r["audited"]]
    vulnerable = [r for r in audited if r["vulnerabilities"]]
    if "--json" in argv:
        print(json.dumps(results, indent=2))
    else:
        for r in vulnerable:
            print(f"VULNERABLE {r['name']} {r['version']}: {', '.join(r['vulnerabilities'])}")
        for r in results:
            if not r["audited"]:
                print(f"not audited: {r['name']} {r['version']}: {r['why']}")
        print(f"{len(audited)} of {len(results)} distributions audited, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
