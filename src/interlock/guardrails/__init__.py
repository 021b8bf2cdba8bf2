"""Guardrails: sensitive data (DLP) and prompt-injection detectors, their settings and the request guard.

The detectors import nothing of interlock; ``settings.py`` reads the ``guardrails:`` config section.
"""

from interlock.guardrails.dlp import CustomPattern, DlpDetector
from interlock.guardrails.findings import Finding
from interlock.guardrails.injection import InjectionDetector, InjectionResult

__all__ = ["CustomPattern", "DlpDetector", "Finding", "InjectionDetector", "InjectionResult"]
