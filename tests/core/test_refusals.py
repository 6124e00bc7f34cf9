"""The refusal table: one entry per error code, and the README's tables say the same."""

import re
from pathlib import Path

import pytest

from realtime.core import close_codes
from realtime.core.refusals import (
    CLOSE_REASON_BYTES,
    DISCONNECT_REASONS,
    REFUSALS,
    REJECTION_CODES,
    Kind,
    Refusal,
    refusal,
)

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def readme_table(heading_row: str) -> list[list[str]]:
    """The rows of the README table whose header row starts with `heading_row`."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading_row))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def codes_in(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", cell)


def test_errors_that_keep_the_connection_open_are_the_frame_refusals():
    listed = {codes_in(row[0])[0] for row in readme_table("| `code`")}
    assert listed == {code for code, r in REFUSALS.items() if r.kind is Kind.FRAME}


def test_every_close_code_in_the_readme_is_the_tables():
    listed = {}
    for row in readme_table("| close code"):
        close_code = row[0]
        for code in codes_in(row[1]):
            listed[code] = int(close_code)
    assert listed == {
        code: r.close_code for code, r in REFUSALS.items() if r.close_code is not None
    }


def test_handshake_refusals_close_and_frame_refusals_may_not():
    for code, entry in REFUSALS.items():
        assert entry.code == code
        assert entry.detail
        if entry.kind is not Kind.FRAME:
            assert entry.close_code is not None, code


def test_a_handshake_refusals_close_code_is_a_4xxx_or_try_again_later():
    for code in REJECTION_CODES:
        assert refusal(code).close_code in (
            close_codes.INVALID_QUERY,
            close_codes.NOT_AUTHENTICATED,
            close_codes.FORBIDDEN,
            close_codes.OVER_LIMIT,
            close_codes.TRY_AGAIN_LATER,
        ), code


def test_disconnect_reasons_name_every_refusal_that_ends_an_open_connection():
    assert {"message_too_big", "policy", "registration_lost", "idle_timeout"} <= (
        DISCONNECT_REASONS
    )
    assert not DISCONNECT_REASONS & {"invalid_json", "not_an_object", "binary_not_supported"}


def test_every_code_fits_a_close_frames_reason_and_a_longer_one_is_refused():
    assert all(len(code.encode("utf-8")) <= CLOSE_REASON_BYTES for code in REFUSALS)
    Refusal("a" * CLOSE_REASON_BYTES, Kind.CLOSE, 1008, "fits")
    with pytest.raises(ValueError, match="does not fit a close frame's reason"):
        Refusal("a" * (CLOSE_REASON_BYTES + 1), Kind.CLOSE, 1008, "one byte over")
