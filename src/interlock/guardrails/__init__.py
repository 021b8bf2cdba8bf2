"""Guardrail detectors: sensitive data (DLP) and prompt injection. Imports nothing of interlock but core."""

from interlock.guardrails.dlp import CustomPattern, DlpDetector
from interlock.guardrails.findings import Finding

__all__ = ["CustomPattern", "DlpDetector", "Finding"]
