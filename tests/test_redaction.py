"""sparring.redaction: what keeps keys out of every line sparring prints or stores."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.redaction import looks_like_key, redact_url, scrub

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=20, max_size=60)
PREFIX = st.sampled_from(["sk-", "sk-proj-", "hf_", "gsk_", "xai-", "ghp_", "glpat-", "r8_", "nvapi-"])


@settings(max_examples=200, deadline=None)
@given(PREFIX, TOKEN, st.text(max_size=40), st.text(max_size=40))
def test_a_key_in_any_text_is_masked(prefix: str, body: str, before: str, after: str) -> None:
    key = prefix + body
    assert looks_like_key(key)
    assert key not in scrub(f"{before} {key} {after}")


def test_values_of_secret_named_variables_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "correct horse battery staple")
    monkeypatch.setenv("PLAIN_SETTING", "correct horse")
    assert scrub("the server said: correct horse battery staple") == "the server said: ***"
    assert "correct horse" in scrub("correct horse")  # a variable whose name holds no secret is not one
    monkeypatch.setenv("ODD_NAME", "hunter2-hunter2")
    assert scrub("hunter2-hunter2", extra_names=("ODD_NAME",)) == "***"


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "HF_TOKEN", "SPARRING_TEST_API_KEY", "my_key", "GROQ_API_KEY_2"])
def test_variable_names_are_not_keys(name: str) -> None:
    assert not looks_like_key(name)


def test_urls_lose_their_credentials() -> None:
    assert redact_url("https://me:pw@host:8000/v1") == "https://***@host:8000/v1"
    assert scrub("connecting to http://user:hunter22@localhost/v1 failed") == \
        "connecting to http://***@localhost/v1 failed"
