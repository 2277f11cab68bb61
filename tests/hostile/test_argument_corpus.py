"""Hostile-input corpus, command lines (issue 14): option values of the wrong type, unknown
options and subcommands, missing required options and choices that do not exist. tyro reports
them in a box of many lines; the CLI turns that into the one ``handface: error:`` line of every
other refusal, naming the option and the ``--help`` to read."""

from __future__ import annotations

import pytest

from hostile import assert_refused, run_cli

CASES = {
    "argument: --num is not a number": (["synth", "--num", "x", "--out", "{tmp}/s"],
                                        "Error parsing --num: invalid literal for int()"),
    "argument: a required option is missing": (["synth", "--num", "3"],
                                                "Missing from handface synth: --out PATH"),
    "argument: an unknown option": (["reconstruct", "a.jpg", "--out", "{tmp}/r", "--nope"],
                                    "Unrecognized options: --nope"),
    "argument: a misspelt subcommand": (["reconstrct", "a.jpg"],
                                        "Unrecognized options: reconstrct, a.jpg; "
                                        "Available subcommands: reconstruct"),
    "argument: a method that does not exist": (["reconstruct", "a.jpg", "--out", "{tmp}/r",
                                                "--method", "magic"],
                                               "invalid choice 'magic' for argument '--method'"),
    "argument: no subcommand": ([], "Expected one of {reconstruct, track"),
}  # fmt: skip
WHERE_HELP = {"argument: a misspelt subcommand": "see handface --help",
              "argument: no subcommand": "see handface --help"}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_command_line_is_one_line_naming_the_option(case, tmp_path):
    args, expected = CASES[case]
    result = run_cli([a.format(tmp=tmp_path) for a in args])
    assert_refused(case, result, match=expected, partial=any(tmp_path.iterdir()))
    help_hint = WHERE_HELP.get(case) or f"see handface {args[0]} --help"
    assert result.error_lines[0].endswith(help_hint), result.error_lines[0]


def test_help_still_prints_in_full_and_exits_0():
    result = run_cli(["synth", "--help"])
    assert result.code == 0
    assert "--num INT" in result.out and "--out PATH" in result.out
    assert result.err == ""
