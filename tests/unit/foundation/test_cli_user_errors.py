"""The CLI's answers to a user's mistakes: one-line errors instead of tracebacks for paths that
cannot be used (while OSErrors that name no path stay loud), and help for a bare `metasync`."""

import click
from click.testing import CliRunner

from pipelines.cli import _UserFacingGroup, main


def test_metasync_without_a_command_prints_the_help():
    result = CliRunner().invoke(main, [], prog_name="metasync")

    assert result.exit_code == 0, result.output
    assert "Usage: metasync" in result.output and "Commands:" in result.output


def test_a_path_the_user_gave_that_cannot_be_used_is_a_one_line_error(tmp_path):
    @click.group(cls=_UserFacingGroup)
    def cli() -> None:
        pass

    @cli.command()
    @click.argument("path")
    def write(path: str) -> None:
        with open(path, "w") as handle:
            handle.write("x")

    runner = CliRunner()
    for path, reason in (
        (tmp_path, "Is a directory"),
        (tmp_path / "missing" / "f.txt", "No such file or directory"),
    ):
        result = runner.invoke(cli, ["write", str(path)])

        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {path}: {reason}\n"


def test_an_oserror_without_a_path_is_not_hidden():
    @click.group(cls=_UserFacingGroup)
    def cli() -> None:
        pass

    @cli.command()
    def broken() -> None:
        raise FileNotFoundError("an internal bug, no path")

    result = CliRunner().invoke(cli, ["broken"])

    assert isinstance(result.exception, FileNotFoundError)


def test_a_sandbox_state_file_that_is_a_folder_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["sandbox", "--port", "0", "--state-file", str(tmp_path)])

    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == f"Error: {tmp_path}: Is a directory"
    assert "Traceback" not in result.output


def test_a_path_the_user_may_not_use_is_a_one_line_error():
    @click.group(cls=_UserFacingGroup)
    def cli() -> None:
        pass

    @cli.command()
    def denied() -> None:  # raised by hand: the tests may run as root, who may write anywhere
        raise PermissionError(13, "Permission denied", "/srv/reports/r.csv")

    result = CliRunner().invoke(cli, ["denied"])

    assert result.exit_code == 1
    assert result.output == "Error: /srv/reports/r.csv: Permission denied\n"
