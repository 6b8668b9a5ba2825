"""`metasync demo` owns its folder: it refuses to wipe one it did not make, and checks its input
before it deletes anything."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.demo import DEMO_MARKER, DemoInputError, _fresh_workdir


def _keepsake(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    keepsake = folder / "sub" / "notes.md"
    keepsake.write_text("mine")
    return keepsake


def test_demo_refuses_a_workdir_it_did_not_make_and_leaves_it_untouched(tmp_path):
    keepsake = _keepsake(tmp_path / "precious")

    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "precious")])

    assert result.exit_code == 1
    assert "refusing to wipe" in result.output and "Traceback" not in result.output
    assert keepsake.read_text() == "mine"


@pytest.mark.parametrize(
    "content", ["", "Country code,Rate\nDE,19\n"], ids=["empty", "not-products"]
)
def test_a_bad_catalog_is_refused_before_the_demo_folder_is_wiped(tmp_path, content):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / DEMO_MARKER).write_text("")
    earlier_run = workdir / "demo.env"
    earlier_run.write_text("{}")
    export = tmp_path / "export.csv"
    export.write_text(content)

    result = CliRunner().invoke(main, ["demo", "--workdir", str(workdir), "--catalog", str(export)])

    assert result.exit_code == 1
    assert str(export) in result.output and "Traceback" not in result.output
    assert earlier_run.exists()


def test_a_folder_the_demo_made_is_wiped_and_marked_again(tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / DEMO_MARKER).write_text("")
    (workdir / "old.db").write_text("last run")

    _fresh_workdir(workdir)

    assert sorted(p.name for p in workdir.iterdir()) == [DEMO_MARKER, "dagster_home"]
    with pytest.raises(DemoInputError):
        _keepsake(tmp_path / "other")
        _fresh_workdir(tmp_path / "other")


def test_a_folder_holding_only_what_metasync_writes_is_taken_as_the_demos(tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "metasync.db").write_text("")  # `METASYNC_STATE_DIR=<it> metasync status` ran first

    _fresh_workdir(workdir)

    assert (workdir / DEMO_MARKER).is_file()
