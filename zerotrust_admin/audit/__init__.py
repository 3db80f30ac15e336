from zerotrust_admin.audit.log import Actor, AuditLog, VerifyResult


def open_audit_log(config, *, sinks: bool = True) -> AuditLog:
    """The configured audit log: ``audit.path``, the sinks of ``audit.sinks``, and
    the installation's signing key (``security.signing``) for its checkpoints."""
    from zerotrust_admin.audit.checkpoint import Signer
    from zerotrust_admin.audit.sinks import build_sinks

    return AuditLog(config.audit_path, sinks=build_sinks(config.section("audit")) if sinks else None, signer=Signer(config, config.home))


__all__ = ["Actor", "AuditLog", "VerifyResult", "open_audit_log"]
