"""The credentials-cache tests of tests/test_cred_cache.py, unchanged, on a
real Redis Cluster (3 masters, 3 replicas) and a real Sentinel group: the
same test functions, collected here with a ``store`` fixture per topology."""

from __future__ import annotations

import pytest

from tests.redis_topologies import topology_env  # the cluster and Sentinel fixtures come from tests/conftest.py
from tests.test_cred_cache import (  # noqa: F401  (collected here again, against this module's store)
    Clock,
    test_another_users_or_roles_entry_is_a_miss,
    test_credentials_expiring_within_the_margin_are_not_cached,
    test_hit_while_valid_and_never_after_the_safety_margin,
    test_purging_a_user_deletes_only_their_entries_without_any_key,
    test_store_ttl_ends_a_safety_margin_before_expiry,
    test_tampered_entry_is_a_miss_and_reported,
)
from tests.test_sessions_contract import store_config
from zerotrust_admin.sessions import open_session_store


@pytest.fixture(params=["cluster", "sentinel"])
def store(request, tmp_path):
    s = open_session_store(store_config(tmp_path, "redis", **topology_env(request.param, request)))
    assert s.cluster == (request.param == "cluster")
    s.clock = s.test_clock = Clock()
    yield s
    s.close()
