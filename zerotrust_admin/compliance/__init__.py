"""Evidence-based compliance reports (``compliance-report``).

Evidence collectors read the live system (evidence.py), controls C1-C13 turn
it into statuses (controls.py), the per-standard requirement mappings are data
files (standards/*.json, from compliance-map.md), and report.py scores and
renders them as PDF, JSON or Markdown.
"""

from zerotrust_admin.compliance.report import STANDARDS, build_report, resolve_standards, run_report, write_report

__all__ = ["STANDARDS", "build_report", "resolve_standards", "run_report", "write_report"]
