"""Key rotation: the schedule, master key changes (rotation and migration
between a key file and an HSM), data key rotation, the session key ring, and
the ``keys status`` report. Library code: the CLI only calls ``run``/``status``.

See docs/key-hierarchy.md for the hierarchy and the crash-safety protocol.
"""

from zerotrust_admin.rotation.schedule import Policy, PlanItem, plan
from zerotrust_admin.rotation.session_keys import SessionKeyRing

__all__ = ["Policy", "PlanItem", "SessionKeyRing", "plan"]
