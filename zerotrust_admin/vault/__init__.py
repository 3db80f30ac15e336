from zerotrust_admin.vault.vault import SecretInfo, Vault, VersionInfo

__all__ = ["SecretInfo", "Vault", "VersionInfo"]
