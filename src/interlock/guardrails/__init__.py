"""Guardrail detectors: sensitive data (DLP) and prompt injection. Imports nothing of interlock but core."""

from interlock.guardrails.dlp import CustomPattern, DlpDetector
from interlock.guardrails.findings import Finding
from interlock.guardrails.injection import InjectionDetector, InjectionResult

__all__ = ["CustomPattern", "DlpDetector", "Finding", "InjectionDetector", "InjectionResult"]
