"""The seed's Python API, as a thin alias of ``zerotrust_admin``.

    from zerotrust_kerberos import SecretManager, ConfigLoader

    with SecretManager().get_aws_credentials(role_arn="arn:aws:iam::123456789012:role/Admin") as creds:
        ...  # creds.access_key_id, creds.secret_access_key, creds.session_token; wiped on exit

    config = ConfigLoader.load(config_file="/etc/zerotrust/config.yaml",
                               secrets_provider="hashicorp", secrets_config={...})
    password = config.get_secret("redis.password")   # env override, redis.password_file, or vault:NAME

Importing this package makes the process non-dumpable (RLIMIT_CORE 0,
PR_SET_DUMPABLE 0), as the CLI does. See docs/python-api.md.
"""

from zerotrust_admin.secret import protect_process

protect_process()  # no core dumps with secrets in them, as the CLI (threat model F6)

from zerotrust_kerberos.api import ConfigLoader, SecretManager  # noqa: E402
from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.errors import ZeroTrustError
from zerotrust_admin.secret import Secret

__all__ = ["ConfigLoader", "Credentials", "Secret", "SecretManager", "ZeroTrustError"]
