from zerotrust_admin.audit.log import AuditLog, VerifyResult, Actor

__all__ = ["Actor", "AuditLog", "VerifyResult"]
