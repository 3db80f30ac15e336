"""AWS: STS credentials for the operator principal (``sts``), the encrypted
credentials cache (``cache``), per-user revocation of issued sessions
(``revoke``) and the ``Credentials`` object (``credentials``).

Nothing here imports boto3 at module level; see docs/aws-credentials.md.
"""

from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.aws.names import parse_role_arn, session_name

__all__ = ["Credentials", "parse_role_arn", "session_name"]
