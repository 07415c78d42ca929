"""Validation reports: what an import found wrong, as counted findings with first examples.

Errors abort the import (nothing is left behind); warnings are attached to the version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]
MAX_EXAMPLES = 5


@dataclass
class Finding:
    code: str
    severity: Severity
    message: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def add(self, code: str, severity: Severity, message: str, count: int, examples: list[Any] = ()) -> None:
        """Record a finding; zero counts are ignored so callers can add unconditionally."""
        if count <= 0:
            return
        self.findings.append(
            Finding(code, severity, message, int(count), [str(e) for e in list(examples)[:MAX_EXAMPLES]])
        )

    def error(self, code: str, message: str, count: int = 1, examples: list[Any] = ()) -> None:
        self.add(code, "error", message, count, examples)

    def warning(self, code: str, message: str, count: int = 1, examples: list[Any] = ()) -> None:
        self.add(code, "warning", message, count, examples)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def get(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def merge(self, other: ValidationReport) -> None:
        self.findings.extend(other.findings)
        self.stats.update(other.stats)

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [asdict(f) for f in self.findings], "stats": dict(self.stats)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ValidationReport:
        if not data:
            return cls()
        return cls([Finding(**f) for f in data.get("findings", [])], dict(data.get("stats", {})))

    def render_text(self) -> str:
        """Plain-text form for the CLI and logs."""
        if not self.findings:
            return "Validation: no problems found."
        lines = [f"Validation: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        for f in sorted(self.findings, key=lambda f: (f.severity != "error", f.code)):
            lines.append(f"  [{f.severity.upper()}] {f.code}: {f.message} ({f.count})")
            for ex in f.examples:
                lines.append(f"      e.g. {ex}")
        return "\n".join(lines)


class ValidationFailed(Exception):
    """Raised when a report has errors; carries the report so callers can show it."""

    def __init__(self, report: ValidationReport):
        self.report = report
        first = report.errors[0] if report.errors else None
        super().__init__(f"{first.code}: {first.message}" if first else "validation failed")
