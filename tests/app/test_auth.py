"""The optional password gate of the dashboard (env var or Streamlit secrets)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from mindgap_ui.auth import PASSWORD_ENV, configured_password, password_matches

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _content_shown(at: AppTest) -> bool:
    return any("MindGap:" in t.value for t in at.title)


def test_no_password_configured_means_no_gate(monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert _content_shown(at)
    assert not [t for t in at.text_input if t.label == "Password"]


def test_env_password_gates_every_page_until_typed(monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-π")
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/overview.py")
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"]
    assert not _content_shown(at) and not at.get("plotly_chart") and not at.sidebar.selectbox
    at.text_input[0].input("wrong").run()
    assert [e.value for e in at.error] == ["Wrong password."]
    assert not at.sidebar.selectbox
    at.text_input[0].input("s3cret-π").run()
    assert not at.exception
    assert not [t for t in at.text_input if t.label == "Password"]
    assert any(t.value.startswith("Overview") for t in at.title)
    at.switch_page("pages/home.py").run()  # remembered for the session
    assert _content_shown(at)


def test_secrets_password_is_used(monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["password"] = "from-secrets"
    at.run()
    assert [t.label for t in at.text_input] == ["Password"]
    at.text_input[0].input("from-secrets").run()
    assert _content_shown(at)


def test_password_helpers(monkeypatch) -> None:
    assert password_matches("abc", "abc") and not password_matches("abc", "abd")
    assert not password_matches("", "abc")
    monkeypatch.setenv(PASSWORD_ENV, "x")
    assert configured_password() == "x"
    monkeypatch.setenv(PASSWORD_ENV, "")
    assert configured_password() is None
