"""Recorded interruptions: a swallowed Ctrl-C or SIGTERM still stops the next loop step."""

from __future__ import annotations

import signal

import pytest

from handface import interrupt


@pytest.fixture
def pending(monkeypatch):
    def set_request(signum):
        monkeypatch.setattr(interrupt, "_requested", signum)

    return set_request


def test_nothing_pending_does_nothing():
    assert interrupt.requested() is None
    interrupt.raise_if_requested()


def test_a_swallowed_ctrl_c_is_raised_again(pending):
    pending(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        interrupt.raise_if_requested()


def test_a_swallowed_sigterm_exits_with_its_status(pending, capsys):
    pending(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        interrupt.raise_if_requested()
    assert isinstance(stop.value, interrupt.Terminated)
    assert stop.value.code == 128 + signal.SIGTERM
    # nothing printed yet: the entry point reports it once the stack has unwound
    assert capsys.readouterr().err == ""


def test_the_entry_point_reports_a_sigterm_after_unwinding(monkeypatch, capsys):
    """The message is printed by the entry point, after every `finally` ran: a handler firing
    inside a library call whose stderr is redirected would lose it (measured: the track
    subprocess test saw no message while MediaPipe's logs were silenced)."""
    from handface import cli, console

    def terminated_inside_a_silenced_call(self) -> None:
        with console.native_logs_silenced():
            raise interrupt.Terminated

    monkeypatch.setattr(cli.Bench, "main", terminated_inside_a_silenced_call)
    with pytest.raises(SystemExit) as stop:
        cli.entrypoint(["bench", "geometry"])
    assert stop.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == interrupt.MESSAGES[signal.SIGTERM]


def test_the_handler_records_the_request(monkeypatch):
    monkeypatch.setattr(interrupt, "_requested", None)
    with pytest.raises(KeyboardInterrupt):
        interrupt._handler(signal.SIGINT, None)
    assert interrupt.requested() == signal.SIGINT
