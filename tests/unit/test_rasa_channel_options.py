"""Options of our Rasa channel as credentials.yml gives them (``${VAR}`` arrives as a string)."""

from __future__ import annotations

import pytest

from handoff_channel.rasa_channel import HandoffInput


def test_garbage_collector_tuning_is_on_unless_credentials_turn_it_off() -> None:
    assert HandoffInput.from_credentials({"token": "s3cret"}).tune_gc is True
    assert HandoffInput.from_credentials({"token": "s3cret", "tune_gc": ""}).tune_gc is True
    assert HandoffInput.from_credentials({"token": "s3cret", "tune_gc": False}).tune_gc is False
    assert HandoffInput.from_credentials({"token": "s3cret", "tune_gc": "false"}).tune_gc is False
    assert HandoffInput.from_credentials({"token": "s3cret", "tune_gc": "0"}).tune_gc is False
    assert HandoffInput.from_credentials({"token": "s3cret", "tune_gc": "yes"}).tune_gc is True


def test_garbage_collector_tuning_follows_rasas_environment_when_credentials_do_not_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOFF_RASA_TUNE_GC", "false")
    assert HandoffInput.from_credentials({"token": "s3cret"}).tune_gc is False
    assert HandoffInput.from_credentials({"token": "s3cret", "tune_gc": True}).tune_gc is True


def test_a_garbage_collector_option_that_is_not_yes_or_no_stops_rasa_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="tune_gc.*expected true or false, got 'sometimes'"):
        HandoffInput.from_credentials({"token": "s3cret", "tune_gc": "sometimes"})
