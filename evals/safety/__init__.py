"""Safety checks: small, pure functions of one text that a suite or the monitor runs.

* :class:`SafetyCheck` / :class:`CheckResult` (``gemmawatch.evals.safety.base``) - the interface.
* :data:`SAFETY_CHECKS` - the registry; built-ins load lazily on first lookup:

  ``pii``          personal data (e-mail, phone, Luhn-valid cards, mod-97 IBANs, US SSN, UK NINO)
  ``refusal``      refusal phrases at the start of an answer (or anywhere in a short one)
  ``toxicity``     profanity/insults, offline classifier (alt-profanity-check), probability
  ``detoxify``     Detoxify toxicity labels; only with its weights on disk (never downloaded)
  ``presidio``     personal data by presidio-analyzer (names too); needs a spaCy model installed
  ``injection``    markup/script injection in a prompt (what the input filter would strip)
  ``shieldgemma``  a target as a ShieldGemma-style judge: P(policy violated) per policy

* :func:`get_check` - build a check by name: ``get_check("pii", categories=["email"])``.
* Input filters (``gemmawatch.evals.safety.sanitize``): ``InputFilter``, ``HTMLSanitizer``
  - rewrite a prompt before it reaches the model.
* Storage of text (``gemmawatch.evals.safety.storage_policy``): ``TextPolicy`` - the
  ``store_text`` option (clear, redacted, hash).

Third-party checks register on :data:`SAFETY_CHECKS` with a factory (a class or a
function taking keyword arguments and returning a :class:`SafetyCheck`).
"""

from __future__ import annotations

import inspect
from typing import Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.safety.base import AppliesTo, CheckResult, SafetyCheck, SafetyCheckFactory
from gemmawatch.registry import Registry

__all__ = ["SAFETY_CHECKS", "AppliesTo", "CheckResult", "SafetyCheck", "SafetyCheckFactory", "get_check"]

#: Check name -> factory (``SAFETY_CHECKS.get("pii")(**args)`` builds one; prefer :func:`get_check`).
SAFETY_CHECKS: Registry[SafetyCheckFactory] = Registry("safety check")
SAFETY_CHECKS.register(
    "pii",
    "gemmawatch.evals.safety.pii:PIICheck",
    description="Personal data: e-mail, phone, Luhn-valid cards, mod-97 IBANs, US SSN, UK NINO (masked)",
)
SAFETY_CHECKS.register(
    "refusal",
    "gemmawatch.evals.safety.refusal:RefusalCheck",
    description="Refusal phrases ('I can't help with that', 'As an AI') leading an output",
)
SAFETY_CHECKS.register(
    "toxicity",
    "gemmawatch.evals.safety.toxicity:ToxicityCheck",
    extra="safety",
    description="Profanity and insults: offline linear classifier (alt-profanity-check), probability 0-1",
)
SAFETY_CHECKS.register(
    "detoxify",
    "gemmawatch.evals.safety.toxicity:DetoxifyCheck",
    description="Detoxify toxicity (+ threat, insult, identity attack...), only with its weights on disk",
)
SAFETY_CHECKS.register(
    "presidio",
    "gemmawatch.evals.safety.presidio:PresidioCheck",
    description="Personal data by presidio-analyzer (names, places too); needs an installed spaCy model",
)
SAFETY_CHECKS.register(
    "injection",
    "gemmawatch.evals.safety.sanitize:InjectionCheck",
    description="Markup/script injection in prompts: script/iframe/object/embed tags, javascript: URLs",
)
SAFETY_CHECKS.register(
    "shieldgemma",
    "gemmawatch.evals.safety.shieldgemma:ShieldGemmaCheck",
    description="A target as a ShieldGemma-style judge: P(Yes) that a prompt/response violates a policy",
)


def get_check(name: str, **args: Any) -> SafetyCheck:
    """Build the safety check registered as ``name`` with keyword ``args``.

    Raises:
        UnknownNameError: No check is registered as ``name`` (the message lists those that are).
        ConfigError: ``args`` do not fit the check's parameters, or a value is invalid.
    """
    factory = SAFETY_CHECKS.get(name)
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as exc:
        accepted = [
            p.name
            for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise ConfigError(
            f"Invalid arguments for safety check '{name}': {exc}. Accepted: {', '.join(accepted) or 'none'}"
        ) from None
    return factory(**args)
