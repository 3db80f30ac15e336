"""audit export --format ocsf: every record of a real audit log (written by
the real CLI) becomes an OCSF 1.7.0 event that passes two validators:

1. the OCSF schema itself (the 1.7.0 schema shipped in the pydantic-ocsf
   package, ``ocsf/schemas/v1_7_0.json``), read by ``OcsfSchema`` below:
   class and category ids, type_uid, every required attribute (through the
   ``extends`` chain), no attribute the class or object does not define,
   enum values, attribute types and object constraints, recursively;
2. pydantic-ocsf's models of the same classes.

Streaming is measured: exporting 200,000 records keeps the peak RSS within
a few MB of exporting 2,000 (constant memory, docs/audit-format.md).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

OCSF_VERSION = "1.7.0"


# --- the schema validator -------------------------------------------------------
class OcsfSchema:
    """Validates events against an OCSF schema export (the JSON of the
    ocsf-schema repository's dictionary, objects and events, with
    ``extends`` and ``$include`` unresolved), as the OCSF server does."""

    def __init__(self, path: Path):
        data = json.loads(path.read_text(encoding="utf-8"))
        self.version = data["version"]
        self.events, self.objects = data["events"], data["objects"]
        self.dictionary = data["dictionary"]["attributes"]
        self.types = data["dictionary"]["types"]["attributes"]
        self.categories = data["categories_meta"]["attributes"]
        # Profiles (host, cloud, ...) add optional attributes through $include
        # files that the export does not carry: an event that uses no profile
        # attribute is checked strictly, and ours use none.
        self.profile_attrs: set[str] = set()

    def _merged(self, table: dict, name: str) -> tuple[dict, dict]:
        chain, spec = [], table[name]
        while True:
            chain.append(spec)
            parent = spec.get("extends")
            if not parent or parent not in table:
                break
            spec = table[parent]
        attrs: dict[str, dict] = {}
        for spec in reversed(chain):
            for key, value in spec.get("attributes", {}).items():
                if key == "$include":
                    continue
                merged = {**attrs.get(key, {}), **value}
                if "enum" in attrs.get(key, {}) and "enum" in value:
                    merged["enum"] = {**attrs[key]["enum"], **value["enum"]}
                attrs[key] = merged
        return chain[0], attrs

    def event_class(self, class_uid: int) -> tuple[str, dict, dict]:
        for name in self.events:
            spec, attrs = self._merged(self.events, name)
            category = self._category_of(name)
            if spec.get("uid") is not None and category is not None and category * 1000 + spec["uid"] == class_uid:
                return name, spec, attrs
        raise AssertionError(f"class_uid {class_uid} is not an OCSF {self.version} class")

    def _category_of(self, name: str):
        spec = self.events[name]
        while spec is not None:
            if spec.get("category") and spec["category"] in self.categories:
                return self.categories[spec["category"]]["uid"]
            spec = self.events.get(spec.get("extends")) if spec.get("extends") else None
        return None

    def _base_type(self, type_name: str) -> str:
        seen = 0
        while type_name in self.types and self.types[type_name].get("type") and seen < 10:
            type_name, seen = self.types[type_name]["type"], seen + 1
        return type_name

    def _check_value(self, where: str, name: str, spec: dict, value, errors: list[str]) -> None:
        entry = {**self.dictionary.get(name, {}), **spec}
        if entry.get("is_array"):
            if not isinstance(value, list):
                errors.append(f"{where}.{name}: not an array")
                return
            for i, item in enumerate(value):
                self._check_scalar(f"{where}.{name}[{i}]", name, entry, item, errors)
            return
        self._check_scalar(f"{where}.{name}", name, entry, value, errors)

    def _check_scalar(self, where: str, name: str, entry: dict, value, errors: list[str]) -> None:
        declared = entry.get("type")
        if declared is None:
            errors.append(f"{where}: no type in the dictionary")
            return
        if declared in self.objects or declared in ("object_t", "object"):
            if not isinstance(value, dict):
                errors.append(f"{where}: not an object")
            elif declared == "object":  # free-form (unmapped)
                pass
            elif declared in self.objects:  # the source form names the object as the type
                self.check_object(where, declared, value, errors)
            elif declared == "object_t":
                self.check_object(where, entry["object_type"], value, errors)
            return
        base = self._base_type(declared)
        ok = {"integer_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "long_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float_t": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "boolean_t": lambda v: isinstance(v, bool),
              "string_t": lambda v: isinstance(v, str),
              "json_t": lambda v: True}.get(base)
        if ok is None:
            errors.append(f"{where}: unknown base type {base} ({declared})")
        elif not ok(value):
            errors.append(f"{where}: {value!r} is not {declared}")
        if declared == "timestamp_t" and isinstance(value, int) and not (10**12 <= value < 10**14):
            errors.append(f"{where}: {value} is not a time in milliseconds")
        if "enum" in entry and name.endswith("_id") and str(value) not in entry["enum"]:
            errors.append(f"{where}: {value!r} is not one of {sorted(entry['enum'], key=int)}")

    def _check_members(self, where: str, attrs: dict, value: dict, errors: list[str], *, allow_profiles: bool) -> None:
        for name, spec in attrs.items():
            if spec.get("requirement") == "required" and name not in value:
                errors.append(f"{where}: required attribute {name} is missing")
        for name, item in value.items():
            if name in attrs:
                self._check_value(where, name, attrs[name], item, errors)
            elif allow_profiles and name in self.profile_attrs:
                self._check_value(where, name, {}, item, errors)
            else:
                errors.append(f"{where}: {name} is not an attribute of this class/object")

    def check_object(self, where: str, object_name: str, value: dict, errors: list[str]) -> None:
        if object_name not in self.objects:
            errors.append(f"{where}: unknown object type {object_name}")
            return
        spec, attrs = self._merged(self.objects, object_name)
        self._check_members(where, attrs, value, errors, allow_profiles=False)
        for rule, names in (spec.get("constraints") or {}).items():
            present = [n for n in names if n in value]
            if rule == "at_least_one" and not present:
                errors.append(f"{where}: needs at least one of {names}")
            if rule == "just_one" and len(present) != 1:
                errors.append(f"{where}: needs exactly one of {names}")

    def validate(self, event: dict) -> list[str]:
        errors: list[str] = []
        name, spec, attrs = self.event_class(event.get("class_uid"))
        category = self._category_of(name)
        if event.get("category_uid") != category:
            errors.append(f"category_uid {event.get('category_uid')} is not {category} for {name}")
        if event.get("type_uid") != event.get("class_uid", 0) * 100 + event.get("activity_id", -1):
            errors.append("type_uid is not class_uid * 100 + activity_id")
        if event.get("class_name") != spec.get("caption"):
            errors.append(f"class_name {event.get('class_name')!r} is not {spec.get('caption')!r}")
        self._check_members(name, attrs, event, errors, allow_profiles=True)
        return errors


def _ocsf_package_dir() -> Path:
    found = importlib.util.find_spec("ocsf")
    if found is None or not found.submodule_search_locations:
        pytest.fail("pydantic-ocsf is not installed (pip install -e .[test])")
    return Path(list(found.submodule_search_locations)[0])


@pytest.fixture(scope="module")
def schema() -> OcsfSchema:
    return OcsfSchema(_ocsf_package_dir() / "schemas" / "v1_7_0.json")


def _pydantic_model(class_uid: int):
    from ocsf.v1_7_0 import events

    return {6003: events.ApiActivity, 3002: events.Authentication, 3001: events.AccountChange}[class_uid]


# --- a real log ------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_log(tmp_path_factory):
    """A home whose log holds every kind of record the CLI writes in everyday use."""
    from zerotrust_admin.mfa import totp

    base = tmp_path_factory.mktemp("ocsf")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "userhome"), "ZEROTRUST_HOME": str(base / "home"),
           "XDG_CONFIG_HOME": str(base / "xdg-config"), "XDG_DATA_HOME": str(base / "xdg-data"),
           "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM", "KRB5CCNAME": f"FILE:{base / 'no-ccache'}", "LANG": "C.UTF-8"}

    def run(*args, input=b"", extra=None):
        proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, env={**env, **(extra or {})},
                              capture_output=True, timeout=120, cwd=str(ROOT))
        return proc

    assert run("init").returncode == 0
    assert run("vault", "put", "db/password", input=b"s3cret-value").returncode == 0
    assert run("vault", "get", "db/password").returncode == 0
    assert run("vault", "get", "db/missing").returncode == 3  # a failure
    assert run("vault", "delete", "db/password", "--yes").returncode == 0
    assert run("rotate-keys", "--dek").returncode == 0, "rotate-keys --dek"
    enrolled = run("mfa", "enroll", "--json")
    assert enrolled.returncode == 0, enrolled.stderr
    secret = json.loads(enrolled.stdout)["secret_base32"]
    seed = base64.b32decode(secret + "=" * (-len(secret) % 8))
    assert run("mfa", "verify", "--otp-stdin", input=b"000000\n").returncode == 4  # a wrong code (almost surely)
    assert run("mfa", "verify", "--otp-stdin", input=totp.totp(seed, time.time()).encode() + b"\n").returncode == 0
    assert run("audit", "anomalies").returncode == 0
    out = base / "export.ndjson"
    exported = run("audit", "export", "--format", "ocsf", "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    return {"env": env, "run": run, "home": base / "home", "export": out}


def _records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]


def test_every_event_passes_the_ocsf_schema(real_log, schema):
    events = [json.loads(line) for line in real_log["export"].read_text().splitlines()]
    records = _records(real_log["home"])
    assert len(events) == len(records) >= 10
    problems = {e["metadata"]["sequence"]: schema.validate(e) for e in events}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
    classes = {e["class_uid"] for e in events}
    assert {6003, 3002, 3001} <= classes, classes  # API Activity, Authentication (mfa verify), Account Change (mfa enroll)
    assert all(e["metadata"]["version"] == OCSF_VERSION for e in events)


def test_every_event_parses_with_the_pydantic_ocsf_models(real_log):
    for line in real_log["export"].read_text().splitlines():
        event = json.loads(line)
        model = _pydantic_model(event["class_uid"])
        model.model_validate(event)


def test_events_carry_what_the_records_say(real_log):
    events = [json.loads(line) for line in real_log["export"].read_text().splitlines()]
    for record, event in zip(_records(real_log["home"]), events):
        assert event["metadata"]["uid"] == record["hash"] and event["metadata"]["sequence"] == record["seq"]
        assert event["status_id"] == (1 if record["success"] else 2)
        assert event["metadata"]["original_time"] == record["timestamp"]
        assert abs(event["time"] / 1000 - _epoch(record["timestamp"])) < 0.002
        if event["class_uid"] == 6003:
            assert event["actor"]["user"]["name"] == record["user"] and event["src_endpoint"]["ip"] == record["source_ip"]
            assert event["resources"][0]["name"] == record["resource"]
    by_action = {(e["unmapped"]["event"], e["unmapped"]["action"], e["status_id"]): e for e in events}
    assert by_action[("secret_access", "read", 1)]["activity_id"] == 2  # Read
    assert by_action[("secret_access", "read", 2)]["status"] == "Failure"  # db/missing
    assert by_action[("secret_access", "write", 1)]["activity_id"] == 1  # Create
    assert by_action[("secret_access", "delete", 1)]["activity_id"] == 4  # Delete
    assert by_action[("mfa", "enroll", 1)]["class_uid"] == 3001 and by_action[("mfa", "enroll", 1)]["activity_id"] == 10
    verify_ok, verify_bad = by_action[("mfa", "verify", 1)], by_action[("mfa", "verify", 2)]
    assert verify_ok["class_uid"] == 3002 and verify_ok["is_mfa"] is True and verify_bad["status"] == "Failure"
    assert verify_ok["user"]["name"] == "alice@EXAMPLE.COM"
    # no secret value anywhere in the export
    assert b"s3cret-value" not in real_log["export"].read_bytes()


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_schema_violation_is_caught(schema):
    """The validator can fail: a missing required attribute, a wrong enum, an unknown attribute, a wrong type."""
    from zerotrust_admin.audit.ocsf import to_ocsf

    good = to_ocsf({"event": "secret_access", "action": "read", "resource": "db/x", "user": "bob@EXAMPLE.COM",
                    "source_ip": "192.0.2.9", "host": "h1", "success": True, "level": "info", "seq": 1, "hash": "ab" * 32,
                    "timestamp": "2026-01-02T03:04:05.678901Z"})
    assert schema.validate(good) == []
    for broken, word in (({k: v for k, v in good.items() if k != "api"}, "api is missing"),
                         ({**good, "severity_id": 42}, "severity_id"),
                         ({**good, "secret": "x"}, "secret is not an attribute"),
                         ({**good, "actor": {"user": {"name": 7}}}, "actor.user.name"),
                         ({**good, "time": 1_767_322_445}, "milliseconds"),
                         ({**good, "type_uid": 600399}, "type_uid")):
        errors = schema.validate(broken)
        assert any(word in e for e in errors), (word, errors)


def test_export_to_stdout_and_json_format(real_log):
    run = real_log["run"]
    ocsf = run("audit", "export")
    assert ocsf.returncode == 0 and ocsf.stdout == real_log["export"].read_bytes()
    plain = run("audit", "export", "--format", "json")
    assert plain.returncode == 0
    assert [json.loads(x) for x in plain.stdout.splitlines()] == _records(real_log["home"])[: len(plain.stdout.splitlines())]
    bad = run("audit", "export", "--format", "cef")
    assert bad.returncode == 2 and "ocsf, json" in bad.stderr.decode()
    assert oct(real_log["export"].stat().st_mode & 0o777) == "0o600"
    missing = run("audit", "export", "--output", str(real_log["home"].parent / "no-dir" / "x.ndjson"))  # outside the home (F1)
    assert missing.returncode == 1 and "does not exist" in missing.stderr.decode()


def _big_log(path: Path, n: int) -> None:
    """n records in the writer's canonical form (the export reads, it does not verify)."""
    with open(path, "wb") as fh:
        for i in range(1, n + 1):
            fh.write(json.dumps({"action": "read", "event": "secret_access", "hash": f"{i:064x}", "host": "vm", "identity": "claimed",
                                 "level": "info", "prev": f"{i - 1:064x}", "resource": f"app/s{i % 97}", "seq": i,
                                 "source_ip": "192.0.2.2", "success": i % 13 != 0, "timestamp": "2026-11-28T19:43:11.620983Z",
                                 "user": "bob@EXAMPLE.COM"}, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    os.chmod(path, 0o600)


def _peak_rss_kb(n: int, tmp_path: Path) -> tuple[int, float]:
    log = tmp_path / f"audit-{n}.log"
    _big_log(log, n)
    code = ("import resource, sys, time\n"
            "from zerotrust_admin.audit.log import AuditLog\n"
            "from zerotrust_admin.audit.ocsf import export_log\n"
            "t = time.perf_counter()\n"
            f"n = export_log(AuditLog({str(log)!r}), 'ocsf', {str(tmp_path / f'out-{n}.ndjson')!r})\n"
            "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=600, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    count, rss, seconds = proc.stdout.split()
    assert int(count) == n
    return int(rss), float(seconds)


def test_export_streams_in_constant_memory(tmp_path):
    small, _ = _peak_rss_kb(2_000, tmp_path)
    large, seconds = _peak_rss_kb(200_000, tmp_path)
    print(f"peak RSS: 2k records {small} KB, 200k records {large} KB, {seconds:.1f} s for 200k")
    assert large - small < 8 * 1024, (small, large)  # 100x the records, < 8 MB more
