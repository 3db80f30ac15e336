"""Issue 14, item 4: ``vault import --dry-run`` refuses what the real run
refuses (same checks, no commit), and ``KEY=`` lines get a hint naming the line
(or are skipped with a warning under --skip-empty)."""

from __future__ import annotations

import json
import os

import pytest
import yaml

EDGE = "A=1\nexport B=\"two\"\nEMPTY=\nC=3 # c\n"


def names(cli) -> list[str]:
    return [i["name"] for i in json.loads(cli("vault", "list", "--json").text)]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_dry_run_refuses_an_empty_value_exactly_as_the_real_run(cli, initialized, tmp_path):
    edge = write(tmp_path, "edge.env", EDGE)
    dry = cli("vault", "import", edge, "--dry-run")
    real = cli("vault", "import", edge)
    assert dry.code == real.code == 2
    assert dry.err == real.err
    assert f"{edge} line 3: EMPTY has an empty value, and the vault cannot store an empty secret" in dry.err
    assert "--skip-empty" in dry.err and "stdin" not in dry.err
    assert names(cli) == []


def test_skip_empty_leaves_the_line_out_with_a_warning_in_both_runs(cli, initialized, tmp_path):
    edge = write(tmp_path, "edge.env", EDGE)
    dry = cli("vault", "import", edge, "--skip-empty", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert json.loads(dry.text)["names"] == ["A", "B", "C"] and "line 3: EMPTY" in dry.err
    assert names(cli) == []
    real = cli("vault", "import", edge, "--skip-empty", "--json")
    assert real.code == 0, real.err
    assert json.loads(real.text)["created"] == 3 and json.loads(real.text)["skipped_empty"] == ["line 3: EMPTY"]
    assert "line 3: EMPTY" in real.err
    assert sorted(names(cli)) == ["A", "B", "C"]


@pytest.mark.parametrize("text, fragment", [
    ('{"format": "zerotrust-export"}', "without its \"secrets\" object"),
    ('{"A": ""}', "A has an empty value"),
])
def test_dry_run_refuses_bad_json_as_the_real_run(cli, initialized, tmp_path, text, fragment):
    path = write(tmp_path, "in.json", text)
    dry, real = cli("vault", "import", path, "--dry-run"), cli("vault", "import", path)
    assert dry.code == real.code == 2 and fragment in dry.err and dry.err == real.err
    assert names(cli) == []


def test_dry_run_refuses_an_oversized_value_naming_its_line(cli, initialized, tmp_path):
    path = write(tmp_path, "big.env", "OK=1\nBIG=" + "x" * (1 << 20 + 0) + "y\n")
    dry, real = cli("vault", "import", path, "--dry-run"), cli("vault", "import", path)
    assert dry.code == real.code == 2 and "line 2: BIG is 1048577 bytes" in dry.err and dry.err == real.err
    assert names(cli) == []


def test_dry_run_refuses_a_name_the_policies_deny(cli, initialized, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({"access": {"policies": [{"principals": ["*"], "secrets": ["app/*"], "actions": ["write", "read", "list"], "effect": "allow"}]}}, fh)
    path = write(tmp_path, "x.env", "app/ok=1\nother/no=2\n")
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    dry, real = cli("vault", "import", path, "--dry-run", env=env), cli("vault", "import", path, env=env)
    assert dry.code == real.code == 4
    assert "may not write other/no" in dry.err and "may not write other/no" in real.err
    assert cli("vault", "import", write(tmp_path, "y.env", "app/ok=1\n"), "--dry-run", env=env).code == 0


# --- .env read with python-dotenv's semantics ---------------------------------------
CORPUS = [
    'A=1\nexport B=two\n  C = spaced  \n',
    'Q="double # not a comment"\nS=\'single # not either\'\nU=unquoted # a comment\nH=hash#inside\n',
    'E="tab\\there\\nnewline \\"quoted\\" back\\\\slash"\nL=\'literal \\n stays\'\nSQ=\'it\\\'s\'\n',
    'PEM="-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAbCdEf==\n-----END PRIVATE KEY-----"\nAFTER=1\n',
    '# a comment\n\n   # indented comment\nX=1\r\nY="crlf"\r\n',
    'UNI="héllo wörld ✓"\nDUP=first\nDUP=second\n',
    'J={"json": "inline", "n": 1}\nURL=https://user@example.com/path?q=1&r=2\n',
]


@pytest.mark.parametrize("text", CORPUS)
def test_env_files_are_read_as_python_dotenv_reads_them(text):
    import io

    from dotenv import dotenv_values

    from zerotrust_admin.importplan import plan_import

    ours = dict(plan_import(text.encode(), "env", "t.env").items)
    theirs = dotenv_values(stream=io.StringIO(text), interpolate=False)
    assert ours == {k: v.encode() for k, v in theirs.items()}


def test_a_multi_line_pem_key_imports_and_round_trips(cli, initialized, tmp_path):
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    src = write(tmp_path, "k.env", f'TLS_KEY="{pem}"\nPRICE="costs $5 \\\\ 10%"\n')
    assert cli("vault", "import", src, "--dry-run").code == 0
    r = cli("vault", "import", src)
    assert r.code == 0, r.err
    assert cli("vault", "get", "TLS_KEY").out == pem.encode()
    assert cli("vault", "get", "PRICE").out == b"costs $5 \\ 10%"
    exported = cli("vault", "export", "--format", "env", "--yes").text
    again = write(tmp_path, "again.env", exported)
    r = cli("vault", "import", again, "--json")
    assert r.code == 0 and json.loads(r.text)["unchanged"] == 2  # export -> import changes nothing


def test_an_unparseable_line_is_refused_not_skipped(cli, initialized, tmp_path):
    src = write(tmp_path, "bad.env", 'GOOD=1\nBROKEN="unterminated\nLATER=2\n')
    r = cli("vault", "import", src, "--dry-run")
    assert r.code == 2 and "line 2: cannot parse this line" in r.err
    assert names(cli) == []
