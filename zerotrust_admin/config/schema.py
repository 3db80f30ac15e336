"""The known configuration keys, their types and defaults.

A dict is a section with known keys; ``FREE`` accepts anything below it (a
provider's own block); a tuple of types is a leaf. Later features add their
keys here, in one place.
"""

from __future__ import annotations

FREE = object()
LIST = list
STR = (str,)
INT = (int,)
BOOL = (bool,)
NUM = (int, float)
STR_OR_LIST = (str, list)

PROVIDERS = ("local", "hashicorp", "aws", "azure")
PROVIDER_ALIASES = {"hashicorp-vault": "hashicorp", "vault": "hashicorp", "aws-secrets-manager": "aws", "azure-key-vault": "azure", "integrated": "local"}

SCHEMA: dict = {
    "secrets": {"provider": STR, "config": FREE, "targets": FREE},  # targets: other providers' blocks, for vault migrate
    "encryption": {
        "key_file": STR,
        "key": STR,
        "algorithm": STR,
        "kdf": FREE,
        "rotation": {"master_days": INT, "dek_days": INT, "session_hours": INT, "enabled": BOOL, "schedule": STR},
        "hsm": {"enabled": BOOL, "provider": STR, "config": FREE},
        "transit": FREE,
    },
    "redis": {
        "url": STR, "host": STR, "port": INT, "db": INT, "username": STR,
        "password": STR, "password_file": STR, "tls": FREE, "ssl": BOOL,
        "socket_timeout": NUM, "connect_timeout": NUM, "key_prefix": STR,
        # issue 16 (sessions/redis_store.py): Redis Cluster and Sentinel, replica acknowledgement of markers
        "mode": STR, "nodes": LIST, "sentinels": LIST, "service_name": STR,
        "sentinel_auth": {"username": STR, "password": STR, "password_file": STR},
        "wait_replicas": INT, "wait_timeout": NUM,
    },
    "sessions": {"backend": STR, "path": STR, "default_ttl": STR, "max_ttl": STR, "key_prefix": STR, "batch_size": INT},
    "aws": {
        "region": STR, "endpoint_url": STR, "roles": LIST, "allowed_accounts": LIST,
        "duration_seconds": INT, "credentials_provider": STR, "access_key_id": STR,
        "secret_key": STR, "secret_key_file": STR, "secret_access_key": STR, "secret_access_key_file": STR,
        "session_policy": FREE, "session_tags": FREE, "external_id": STR, "role_config": FREE,
        "cache": FREE, "profile": STR,
        # issue 5 (aws/): credentials, per-service endpoints, timeouts, retries, revocation
        "access_key": STR, "endpoints": FREE, "set_source_identity": BOOL, "connect_timeout": NUM,
        "read_timeout": NUM, "max_attempts": INT, "retry_base_seconds": NUM, "revocation_policy_name": STR,
    },
    "tls": {
        "min_version": (str, int, float), "ciphers": STR_OR_LIST, "ca_file": STR, "cert_file": STR,
        "key_file": STR, "verify": BOOL, "enabled": BOOL,
    },
    "audit": {"path": STR, "sinks": LIST, "syslog": FREE, "webhook": FREE, "level": STR, "retention_days": INT, "on_sink_failure": STR},
    "security": {
        "breach_notification": {"enabled": BOOL, "channels": LIST, "retries": INT, "timeout_seconds": NUM, "backoff_seconds": NUM, "strict": BOOL},
        "anomaly_detection": FREE,
        "mfa": FREE,
        "rate_limit": FREE,
        "lockout": FREE,
        "ip_restrictions": FREE,
        "memory_protection": FREE,
        "network_locations": FREE,
        # threat model I1: prove the Kerberos identity with the KDC (zerotrust_admin/identity.py)
        "identity": {"verify": STR, "keytab": STR, "service": STR, "require": BOOL, "timeout_seconds": NUM, "krb5_config": STR, "kvno": STR},
        "signing": {"source": STR, "key_file": STR, "key_label": STR},  # zerotrust_admin/signing.py
    },
    "access": {"policies": LIST},
    "secret_rotation": LIST,  # entries validated by zerotrust_admin.secret_rotation.config (docs/secret-rotation.md)
}

DEFAULTS: dict = {
    "secrets": {"provider": "local", "config": {}},
    "encryption": {"rotation": {"master_days": 90, "dek_days": 30, "session_hours": 24}},
    "sessions": {"backend": "sqlite"},
    "audit": {"sinks": ["file"]},
    "aws": {"duration_seconds": 3600, "credentials_provider": "default"},
    "tls": {"min_version": "1.2"},
}

# Keys whose value is a secret: they may come from ``<key>_file``, the
# environment or ``vault:NAME``, and ``config check`` flags them as plaintext.
SECRET_KEYS = {
    "password", "secret", "secret_id", "token", "pin", "client_secret", "secret_key",
    "secret_access_key", "integration_key", "routing_key", "hsm_password", "key",
    "api_key", "webhook_url", "passphrase",
}

# Environment variables that are not config overrides.
NON_CONFIG_ENV = {"ZEROTRUST_HOME", "ZEROTRUST_CONFIG", "ZEROTRUST_DEBUG", "ZEROTRUST_PRINCIPAL", "ZEROTRUST_PASSPHRASE"}
NON_CONFIG_ENV |= {"ZEROTRUST_HSM_PIN", "ZEROTRUST_BACKUP_PASSPHRASE"}  # HSM PIN, backup passphrase (docs/hsm.md, docs/backup.md)
NON_CONFIG_ENV |= {"ZEROTRUST_OTP", "ZEROTRUST_NO_MLOCK"}  # MFA code for scripts, mlock off (docs/security-model.md)

# Settings the environment may not override (threat model P1): the access
# policies, the audit trail and every security control, and where the master
# key comes from (the key-source endpoints and modules, threat model V1). A
# ZEROTRUST_<SECTION>_<KEY> variable for any key below these is an error naming
# it. The secret provider's own endpoint (secrets.config.url) stays overridable:
# the provider already honours VAULT_ADDR, and the operator's own token goes
# with it.
ENV_PROTECTED = ("access", "audit", "security", "encryption.hsm", "encryption.transit")
