"""coordinator.edge.logs: exact logfmt/JSON shapes, quoting, one line per record, secret redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from coordinator.core.model import Role
from coordinator.edge.logs import add_secret, clear_secrets, log_event, logfmt_value, setup_logging

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Root logging to a fresh buffer; the agent's handler and the secrets are removed afterwards."""
    buf = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    handler = setup_logging("logfmt", "DEBUG", stream=buf)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        clear_secrets()


def lines(buf: io.StringIO) -> list[str]:
    text = buf.getvalue()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_logfmt_line_has_ts_level_logger_msg_then_fields(stream: io.StringIO) -> None:
    logging.getLogger("agent.election").info("lease acquired", extra={"fields": {"pod": "mg-0", "term": 3}})
    [line] = lines(stream)
    assert re.fullmatch(
        rf'ts={TS} level=info logger=agent\.election msg="lease acquired" pod=mg-0 term=3', line
    )


def test_log_event_helper_logs_fields_at_the_given_level(stream: io.StringIO) -> None:
    log_event(logging.getLogger("agent.guard"), "demoting", level=logging.WARNING, pod="mg-1", role=Role.MAIN)
    [line] = lines(stream)
    assert line.split(" ", 1)[1] == 'level=warning logger=agent.guard msg="demoting" pod=mg-1 role=main'


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", "plain"),
        ("10.0.0.1:10000", "10.0.0.1:10000"),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("", '""'),
        ("line1\nline2", '"line1\\nline2"'),
        ("tab\there", '"tab\\there"'),
        ("back\\slash", '"back\\\\slash"'),
        ("sep\u2028x", '"sep\\u2028x"'),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (1.5, "1.5"),
        (Role.REPLICA, "replica"),
        ({"b": 1, "a": "x y"}, '"{\\"a\\": \\"x y\\", \\"b\\": 1}"'),
    ],
)
def test_logfmt_values_are_quoted_only_when_needed(value: object, rendered: str) -> None:
    assert logfmt_value(value) == rendered


def test_record_with_newlines_and_quotes_stays_on_one_line(stream: io.StringIO) -> None:
    logging.getLogger("t").info('first\nsecond "quoted"\r\nthird', extra={"fields": {"note": "a\nb"}})
    [line] = lines(stream)
    assert 'msg="first\\nsecond \\"quoted\\"\\r\\nthird"' in line
    assert line.endswith('note="a\\nb"')


def test_exception_is_rendered_escaped_on_the_same_line(stream: io.StringIO) -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logging.getLogger("t").exception("call failed")
    [line] = lines(stream)
    assert ' level=error logger=t msg="call failed" exc="Traceback (most recent call last):\\n' in line
    assert "RuntimeError: boom\\nsecond line" in line


def test_reserved_field_names_do_not_overwrite_the_line_keys(stream: io.StringIO) -> None:
    logging.getLogger("t").info("m", extra={"fields": {"msg": "other", "level": "x", "bad key": 1}})
    [line] = lines(stream)
    assert line.endswith('level=info logger=t msg="m" f_msg=other f_level=x bad_key=1')


def test_json_format_is_one_object_per_line_with_fields_and_exception() -> None:
    buf = io.StringIO()
    handler = setup_logging("json", "INFO", stream=buf)
    try:
        logging.getLogger("agent.api").info(
            "hello %s", "world", extra={"fields": {"n": 2, "role": Role.MAIN}}
        )
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logging.getLogger("agent.api").error("failed", exc_info=True)
        logging.getLogger("agent.api").debug("hidden below INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    first, second = lines(buf)
    doc = json.loads(first)
    assert re.fullmatch(TS, doc.pop("ts"))
    assert doc == {"level": "info", "logger": "agent.api", "msg": "hello world", "n": 2, "role": "main"}
    assert list(json.loads(first)) == ["ts", "level", "logger", "msg", "n", "role"]
    err = json.loads(second)
    assert err["level"] == "error" and err["msg"] == "failed"
    assert err["exc"].startswith("Traceback") and err["exc"].endswith("ValueError: bad\nvalue")


def test_setup_logging_twice_keeps_a_single_handler() -> None:
    buf = io.StringIO()
    setup_logging("logfmt", "INFO", stream=io.StringIO())
    handler = setup_logging("logfmt", "INFO", stream=buf)
    try:
        logging.getLogger("t").info("once")
    finally:
        logging.getLogger().removeHandler(handler)
    assert len(lines(buf)) == 1


def test_setup_logging_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="logfmt or json"):
        setup_logging("xml")


def test_registered_secret_is_redacted_in_message_args_and_fields(stream: io.StringIO) -> None:
    add_secret("hunter2-pw")
    log = logging.getLogger("agent.memgraph")
    log.info("connecting with hunter2-pw")
    log.info("password is %s", "hunter2-pw")
    log.info("fields", extra={"fields": {"password": "hunter2-pw", "nested": {"k": ["x hunter2-pw"]}}})
    text = stream.getvalue()
    assert "hunter2" not in text
    first, second, third = lines(stream)
    assert first.endswith('msg="connecting with ***"')
    assert second.endswith('msg="password is ***"')
    assert third.endswith('msg="fields" password=*** nested="{\\"k\\": [\\"x ***\\"]}"')


def test_registered_secret_is_redacted_in_exception_text(stream: io.StringIO) -> None:
    secret = "tok" + '"' + "en" + "\\" + "1"  # built at run time so the traceback's source line lacks it
    add_secret(secret)
    try:
        raise PermissionError(f"token {secret} refused")
    except PermissionError:
        logging.getLogger("t").exception("auth")
    [line] = lines(stream)
    exc = json.loads(line.split(" exc=", 1)[1])
    assert secret not in exc
    assert exc.endswith("PermissionError: token *** refused")


def test_secret_is_redacted_in_json_output_too() -> None:
    buf = io.StringIO()
    add_secret("s3cr3t")
    handler = setup_logging("json", "INFO", stream=buf)
    try:
        log_event(logging.getLogger("t"), "login s3cr3t", user="ha", password="s3cr3t")
    finally:
        logging.getLogger().removeHandler(handler)
        clear_secrets()
    doc = json.loads(buf.getvalue())
    assert (doc["msg"], doc["password"]) == ("login ***", "***")


def test_empty_secret_is_ignored(stream: io.StringIO) -> None:
    add_secret("")
    add_secret(None)
    logging.getLogger("t").info("nothing to hide")
    assert lines(stream)[0].endswith('msg="nothing to hide"')


def test_bad_format_arguments_still_produce_one_line(stream: io.StringIO) -> None:
    logging.getLogger("t").info("needs two %s %s", "only-one")
    [line] = lines(stream)
    assert "needs two %s %s (bad log arguments ('only-one',)" in line
