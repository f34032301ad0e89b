"""Keeping secrets out of every line sparring prints or stores: one home for it.

API keys reach sparring through environment variables (``backend.api_key_env`` names one,
``HF_TOKEN``, ``OPENAI_API_KEY``, ...) and, by mistake, through places meant for names or
URLs (a key pasted as the value of ``api_key_env``, ``https://user:pass@host``). Messages,
manifests and traces go through ``scrub``/``redact_url`` on their way out.

Example::

    from sparring.redaction import looks_like_key, redact_url, scrub

    looks_like_key("hf_AbCdEfGhIjKlMnOpQrStUv")    # True
    redact_url("https://me:pw@host/v1")             # 'https://***@host/v1'
    scrub("got hf_AbCdEfGhIjKlMnOpQrStUv back")     # 'got *** back'
"""

from __future__ import annotations

import os
import re

__all__ = ["looks_like_key", "redact_url", "scrub", "secret_env_values"]

# Prefixes of API keys and tokens as providers issue them (OpenAI, Anthropic, Hugging Face, Groq,
# xAI, Google, GitHub, GitLab, Replicate, NVIDIA, Perplexity, Fireworks, Stripe-like pk/rk/sk).
_KEY_PREFIXES = ("sk-", "sk_", "pk-", "pk_", "rk_", "hf_", "gsk_", "xai-", "AIza", "ghp_", "gho_", "ghs_",
                 "github_pat_", "glpat-", "r8_", "nvapi-", "pplx-", "fw_", "key-", "tok-", "tok_")
_KEYLIKE = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(p) for p in _KEY_PREFIXES)
                      + r")[A-Za-z0-9_\-]{8,}|\bBearer\s+[A-Za-z0-9._\-]{8,}")
_USERINFO = re.compile(r"//[^/@\s]*@")
_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSW|AUTH|CREDENTIAL", re.I)
_MIN_SECRET = 6
"""Shorter values of secret-named variables are not scrubbed (``1`` would blank every digit)."""


def looks_like_key(value: str) -> bool:
    """True for a value that is probably a key itself: a provider's key prefix followed by at least
    16 characters, or a long random-looking token (letters of both cases and digits, no spaces)."""
    text = value.strip()
    if any(text.startswith(p) and len(text) - len(p) >= 16 for p in _KEY_PREFIXES):
        return True
    return (len(text) >= 24 and re.fullmatch(r"[A-Za-z0-9_\-.]+", text) is not None
            and any(c.isdigit() for c in text) and any(c.islower() for c in text)
            and any(c.isupper() for c in text))


def secret_env_values(extra_names: tuple[str, ...] = ()) -> list[str]:
    """Values of the environment variables that may hold a key: names with KEY, TOKEN, SECRET,
    PASSWORD, AUTH or CREDENTIAL in them, plus ``extra_names`` (e.g. the run's ``api_key_env``)."""
    values = {value for name, value in os.environ.items()
              if (_SECRET_ENV.search(name) or name in extra_names) and len(value) >= _MIN_SECRET}
    return sorted(values, key=len, reverse=True)  # longest first: a key that contains another


def scrub(text: str, *, extra_names: tuple[str, ...] = ()) -> str:
    """``text`` with every secret it may carry replaced by ``***``: values of secret-looking
    environment variables, key-shaped tokens, and user:password@ in URLs."""
    for value in secret_env_values(extra_names):
        if value in text:
            text = text.replace(value, "***")
    return _USERINFO.sub("//***@", _KEYLIKE.sub("***", text))


def redact_url(url: str) -> str:
    """``url`` without its user:password@ part, fit to be shown or stored."""
    return _USERINFO.sub("//***@", url)
