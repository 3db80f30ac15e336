"""Issue 14, "Minor and polish": one test per item."""

from __future__ import annotations

import json


def test_json_mode_errors_are_one_json_object_on_stderr(cli, initialized):
    r = cli("vault", "get", "nope", "--json")
    assert r.code == 3 and r.out == b""
    assert json.loads(r.err) == {"error": {"code": 3, "kind": "not_found", "message": "secret 'nope' not found",
                                           "hint": "list secrets with: zerotrust-admin vault list"}}
    usage = cli("--json", "vault", "get", "--bogus")
    assert usage.code == 2 and json.loads(usage.err)["error"]["kind"] == "usage"
    plain = cli("vault", "get", "nope")
    assert plain.err.startswith("zerotrust-admin: error: secret 'nope' not found")
