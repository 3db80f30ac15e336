"""``aws-iam``: the access key of an IAM user.

target:
  user: deploy-bot              # the IAM user whose key is rotated
  admin_secret: aws/iam-admin   # vault secret: JSON {"AccessKeyId", "SecretAccessKey"} of a principal
                                # allowed iam:ListAccessKeys/CreateAccessKey/UpdateAccessKey/DeleteAccessKey on it
  region: us-east-1             # default: aws.region, then us-east-1
  endpoint_url: ...             # optional (a private endpoint; moto in the tests); sts_endpoint_url likewise

The vault value is JSON ``{"AccessKeyId": ..., "SecretAccessKey": ...}``.
``create_pending`` creates the user's second key (IAM makes the secret, so the
key exists from this step on); ``apply`` makes sure it is active; ``test``
calls STS ``GetCallerIdentity`` with it and checks that the answer is that
user; ``retire`` (after the grace period) deactivates the previous key, which
an operator can still re-activate if a consumer was missed; it is deleted at
the start of the next rotation, when the user needs the slot (IAM allows two
keys). ``rollback`` deletes the new key.

A crash between IAM creating the key and the vault recording it leaves a key
nobody holds. The engine records a ``creating`` step before asking IAM, so the
next run knows a create was interrupted and deletes an active key other than
the current one only when IAM made it after that record; any other unknown
active key (an operator's) is refused with a hint, never deleted.
"""

from __future__ import annotations

import json
from zerotrust_admin.errors import DeniedError, NotFoundError, UnavailableError, UsageError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationTestFailed, Rotator, require_keys


def key_of(value: Secret | None) -> tuple[str, str] | None:
    if value is None:
        return None
    try:
        obj = json.loads(value.reveal_text())
        return str(obj["AccessKeyId"]), str(obj["SecretAccessKey"])
    except (ValueError, KeyError, TypeError):
        raise UsageError("the vault value is not an access key (JSON with AccessKeyId and SecretAccessKey)") from None


class AwsIamRotator(Rotator):
    kind = "aws-iam"
    creates_in_target = True

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        return require_keys(target, "user", "admin_secret")

    def __init__(self, ctx):
        super().__init__(ctx)
        self._iam = None

    def _client(self, service: str, key: tuple[str, str]):
        import boto3
        from botocore.config import Config

        t = self.ctx.target
        endpoint = t.get("sts_endpoint_url" if service == "sts" else "endpoint_url") or t.get("endpoint_url")
        return boto3.client(service, region_name=str(t.get("region") or "us-east-1"), endpoint_url=endpoint,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1],
                            config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}))

    @property
    def iam(self):
        if self._iam is None:
            secret = self.ctx.admin_credential()
            try:
                self._iam = self._client("iam", key_of(secret))
            finally:
                secret.wipe()
        return self._iam

    def _call(self, fn):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            user = self.ctx.target["user"]
            if code == "NoSuchEntity":
                raise NotFoundError(f"IAM user {user!r} or its key was not found") from None
            if code in ("AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch"):
                raise DeniedError(f"IAM refused the administrator's request for user {user!r} ({code})",
                                  hint="check the admin_secret key and its iam:*AccessKey* permissions") from None
            raise UsageError(f"IAM refused the request for user {user!r} ({code or 'error'})") from None
        except BotoCoreError as exc:
            raise UnavailableError(f"IAM is unavailable ({type(exc).__name__})") from None

    def _keys(self) -> list[dict]:
        user = str(self.ctx.target["user"])
        return self._call(lambda: self.iam.list_access_keys(UserName=user))["AccessKeyMetadata"]

    # --- the steps ---------------------------------------------------------
    def create_pending(self, current: Secret | None) -> Secret:
        user = str(self.ctx.target["user"])
        now = key_of(current)
        for key in self._keys():
            if now is not None and key["AccessKeyId"] == now[0]:
                continue
            since = self.ctx.orphans_after
            # IAM's CreateDate has whole seconds: a key made in the second of the record counts as ours.
            orphan = since is not None and key["Status"] == "Active" and key["CreateDate"] >= since.replace(microsecond=0)
            if key["Status"] == "Inactive" or orphan:
                self._call(lambda k=key: self.iam.delete_access_key(UserName=user, AccessKeyId=k["AccessKeyId"]))
            elif now is not None or len(self._keys()) >= 2:
                raise UsageError(f"IAM user {user!r} has another active access key ({key['AccessKeyId']}) that the vault does not hold",
                                 hint="deactivate or delete it after checking who uses it, then run rotate-secrets again")
        created = self._call(lambda: self.iam.create_access_key(UserName=user))["AccessKey"]
        return Secret(json.dumps({"AccessKeyId": created["AccessKeyId"], "SecretAccessKey": created["SecretAccessKey"]}, sort_keys=True))

    def apply(self, pending: Secret, current: Secret | None) -> None:
        key_id = key_of(pending)[0]
        user = str(self.ctx.target["user"])
        if not any(k["AccessKeyId"] == key_id for k in self._keys()):
            raise NotFoundError(f"the new access key of IAM user {user!r} is gone", hint="the next run starts a new rotation")
        self._call(lambda: self.iam.update_access_key(UserName=user, AccessKeyId=key_id, Status="Active"))

    def test(self, pending: Secret) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        user = str(self.ctx.target["user"])
        try:
            arn = self._client("sts", key_of(pending)).get_caller_identity()["Arn"]
        except ClientError:
            raise RotationTestFailed(f"the new access key of IAM user {user!r} is refused by STS") from None
        except BotoCoreError as exc:
            raise UnavailableError(f"STS is unavailable ({type(exc).__name__})") from None
        if ":user/" not in arn or not arn.endswith("/" + user):
            raise RotationTestFailed(f"the new access key signs in as another identity than IAM user {user!r}")

    def retire(self, previous: Secret, current: Secret) -> None:
        old, now = key_of(previous), key_of(current)
        if old[0] == now[0]:
            return
        user = str(self.ctx.target["user"])
        if any(k["AccessKeyId"] == old[0] and k["Status"] == "Active" for k in self._keys()):
            self._call(lambda: self.iam.update_access_key(UserName=user, AccessKeyId=old[0], Status="Inactive"))

    def rollback(self, pending: Secret, current: Secret | None) -> None:
        new = key_of(pending)
        user = str(self.ctx.target["user"])
        if current is not None and key_of(current)[0] == new[0]:
            return
        if any(k["AccessKeyId"] == new[0] for k in self._keys()):
            self._call(lambda: self.iam.delete_access_key(UserName=user, AccessKeyId=new[0]))
