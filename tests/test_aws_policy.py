"""The documents revoke-credentials puts, and the principal -> session-name mapping.

moto stores role policies but does not evaluate DateLessThan, so the documents
are checked here: cut-off time, identity conditions, merge, prune and size.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from zerotrust_admin.aws import revoke as R
from zerotrust_admin.aws.names import MAX_LEN, MIN_LEN, parse_role_arn, session_name
from zerotrust_admin.errors import UsageError, ZeroTrustError

NOW = 1_800_000_000.25  # 2027-01-15T08:00:00.25Z
AWS_NAME = re.compile(r"\A[A-Za-z0-9_=,.@-]{2,64}\Z")


def ours(doc, suffix):
    return [s for s in doc["Statement"] if s.get("Sid", "").startswith(R.SID_PREFIX) and s["Sid"].endswith(suffix)]


def by_name(doc) -> dict:
    """{session name: (SourceIdentity cut-off, userid cut-off)} from a document."""
    out: dict = {}
    for s in ours(doc, "S"):
        names = s["Condition"]["StringEquals"]["aws:SourceIdentity"]
        for n in [names] if isinstance(names, str) else names:
            out.setdefault(n, [None, None])[0] = s["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    for s in ours(doc, "U"):
        ids = s["Condition"]["StringLike"]["aws:userid"]
        for i in [ids] if isinstance(ids, str) else ids:
            assert i.startswith("*:")
            out.setdefault(i[2:], [None, None])[1] = s["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    return {k: tuple(v) for k, v in out.items()}


# --- one revocation --------------------------------------------------------------
def test_cutoff_is_now_rounded_up_and_denies_everything_for_that_identity():
    cutoff = R.cutoff_for(NOW)
    assert NOW < cutoff <= NOW + 1
    doc = R.revocation_document(None, [session_name("alice@EXAMPLE.COM")], cutoff, NOW)
    assert doc["Version"] == "2012-10-17"
    assert len(doc["Statement"]) == 2
    for s in doc["Statement"]:
        assert s["Effect"] == "Deny" and s["Action"] == "*" and s["Resource"] == "*"
        assert s["Condition"]["DateLessThan"] == {"aws:TokenIssueTime": "2027-01-15T08:00:01Z"}
        assert re.fullmatch(r"[A-Za-z0-9]+", s["Sid"])  # IAM: Sids are alphanumeric
    si, = ours(doc, "S")
    uid, = ours(doc, "U")
    assert si["Condition"]["StringEquals"] == {"aws:SourceIdentity": "alice@EXAMPLE.COM"}
    assert uid["Condition"]["StringLike"] == {"aws:userid": "*:alice@EXAMPLE.COM"}
    assert R.parse_iso(si["Condition"]["DateLessThan"]["aws:TokenIssueTime"]) == cutoff


def test_kerberos_service_principal_is_revoked_under_its_mapped_name():
    name = session_name("HTTP/web1.example.com@EXAMPLE.COM")
    doc = R.revocation_document(None, [name], R.cutoff_for(NOW), NOW)
    assert set(by_name(doc)) == {name}
    assert "/" not in json.dumps(doc)


def test_all_users_document_is_the_consoles():
    doc = R.all_users_document(R.cutoff_for(NOW))
    assert doc == {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": ["*"], "Resource": ["*"],
                                                            "Condition": {"DateLessThan": {"aws:TokenIssueTime": R.iso(R.cutoff_for(NOW))}}}]}
    assert R.ALL_USERS_POLICY == "AWSRevokeOlderSessions"


# --- merge and prune ---------------------------------------------------------------
def test_merge_keeps_earlier_users_and_moves_a_repeated_users_cutoff_forward():
    doc1 = R.revocation_document(None, ["alice@EX"], R.cutoff_for(NOW), NOW)
    later = NOW + 600
    doc2 = R.revocation_document(json.loads(R.compact(doc1)), ["bob@EX"], R.cutoff_for(later), later)
    assert by_name(doc2) == {"alice@EX": (R.iso(R.cutoff_for(NOW)),) * 2, "bob@EX": (R.iso(R.cutoff_for(later)),) * 2}
    again = later + 600
    doc3 = R.revocation_document(doc2, ["alice@EX"], R.cutoff_for(again), again)
    assert by_name(doc3)["alice@EX"] == (R.iso(R.cutoff_for(again)),) * 2
    assert by_name(doc3)["bob@EX"] == (R.iso(R.cutoff_for(later)),) * 2
    assert len(doc3["Statement"]) == 4  # one pair per user, not one per revocation


def test_a_cutoff_never_moves_backwards():
    doc = R.revocation_document(None, ["alice@EX"], R.cutoff_for(NOW + 100), NOW + 100)
    doc = R.revocation_document(doc, ["alice@EX"], R.cutoff_for(NOW), NOW)  # a late, older revocation
    assert by_name(doc)["alice@EX"][0] == R.iso(R.cutoff_for(NOW + 100))


def test_statements_older_than_the_longest_session_are_pruned():
    doc = R.revocation_document(None, ["old@EX"], R.cutoff_for(NOW), NOW)
    just_inside = NOW + 43_200 - 5
    doc = R.revocation_document(doc, ["mid@EX"], R.cutoff_for(just_inside), just_inside)
    assert set(by_name(doc)) == {"old@EX", "mid@EX"}  # old@EX's sessions could still be alive
    past = NOW + 43_200 + 5
    doc = R.revocation_document(doc, ["new@EX"], R.cutoff_for(past), past)
    assert set(by_name(doc)) == {"mid@EX", "new@EX"}


def test_foreign_statements_in_the_document_are_kept():
    foreign = {"Sid": "OpsManual", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}
    doc = R.revocation_document({"Version": "2012-10-17", "Statement": [foreign]}, ["alice@EX"], R.cutoff_for(NOW), NOW)
    assert foreign in doc["Statement"]
    assert len(doc["Statement"]) == 3


# --- size -------------------------------------------------------------------------------
def test_document_stays_under_the_iam_limit_by_coalescing_the_oldest_users():
    doc = None
    names = [f"user{i:03d}.with.a.long.principal.name@EXAMPLE.COM" for i in range(60)]
    for i, name in enumerate(names):
        t = NOW + i * 60
        doc = R.revocation_document(doc, [name], R.cutoff_for(t), t)
        assert len(R.compact(doc)) <= R.MAX_POLICY_CHARS
    final = by_name(doc)
    assert set(final) == set(names)  # nobody was dropped
    # every user is denied at least up to their own cut-off (coalescing only extends it)
    for i, name in enumerate(names):
        assert R.parse_iso(final[name][0]) >= R.cutoff_for(NOW + i * 60)
        assert final[name][0] == final[name][1]
    # the newest user keeps an exact, individual cut-off
    assert final[names[-1]][0] == R.iso(R.cutoff_for(NOW + 59 * 60))
    assert len(R.compact(doc)) > 5000  # the test really was near the limit


def test_too_many_users_for_one_document_is_refused_not_truncated():
    doc = None
    with pytest.raises(ZeroTrustError) as err:
        for i in range(400):
            name = f"u{i:04d}" + "x" * 55 + "@EXAMPLE"
            doc = R.revocation_document(doc, [name], R.cutoff_for(NOW), NOW)
    assert "--all-users" in (err.value.hint or "")
    assert len(R.compact(doc)) <= R.MAX_POLICY_CHARS


# --- ARNs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arn", ["arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::123456789012:role/path/to/Ops-Role_1",
                                 "arn:aws-us-gov:iam::123456789012:role/x"])
def test_valid_role_arns(arn):
    role = parse_role_arn(arn)
    assert role.account == "123456789012" and arn.endswith(role.name)


@pytest.mark.parametrize("arn", ["", "Admin", "arn:aws:iam::12345678901:role/x", "arn:aws:iam::123456789012:user/x",
                                 "arn:aws:s3:::bucket", "arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:role/a b",
                                 "arn:aws:iam::123456789012:role/" + "x" * 65])
def test_malformed_role_arns_are_usage_errors(arn):
    with pytest.raises(UsageError):
        parse_role_arn(arn)


# --- the session-name mapping -------------------------------------------------------------------
def test_plain_principals_map_to_themselves_and_service_principals_are_marked():
    assert session_name("alice@EXAMPLE.COM") == "alice@EXAMPLE.COM"
    mapped = session_name("svc/host.example.com@EXAMPLE.COM")
    assert mapped.startswith("svc.host.example.com@EXAMPLE.COM=") and AWS_NAME.match(mapped)
    # '/' -> '.' is lossy, so the two must differ
    assert session_name("svc.host.example.com@EXAMPLE.COM") != mapped


def test_a_principal_that_looks_mapped_is_mapped_again():
    mapped = session_name("svc/host@R")
    assert session_name(mapped) != mapped


principals = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)
kerberos_like = st.builds(lambda a, b, c: f"{a}/{b}@{c}", st.from_regex(r"[a-z]{1,12}", fullmatch=True),
                          st.from_regex(r"[a-z0-9.-]{1,80}", fullmatch=True), st.from_regex(r"[A-Z.]{1,20}", fullmatch=True))


@settings(max_examples=200, deadline=None)
@given(st.one_of(principals, kerberos_like))
def test_mapping_is_valid_for_aws_and_deterministic(p):
    name = session_name(p)
    assert MIN_LEN <= len(name) <= MAX_LEN
    assert AWS_NAME.match(name)
    assert session_name(p) == name


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(principals, kerberos_like), min_size=50, max_size=200, unique=True))
def test_mapping_is_injective(ps):
    names = [session_name(p) for p in ps]
    assert len(set(names)) == len(ps)


def test_mapping_is_injective_on_a_large_adversarial_sample():
    # Many principals that collide after '/'->'.', other-char->'_' and truncation.
    base = "svc/" + "h" * 60 + "@EXAMPLE.COM"
    sample = set()
    for i in range(20_000):
        sample.add(f"svc/host{i}@EX")
        sample.add(f"svc.host{i}@EX")
        sample.add(f"svc_host{i}@EX")
        sample.add(f"svc#host{i}@EX")
        sample.add(base + str(i))
    names = {session_name(p) for p in sample}
    assert len(names) == len(sample)
