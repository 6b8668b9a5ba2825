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


def test_a_folder_metasync_dev_serves_is_not_wiped_until_dev_stops(tmp_path):
    """`make demo` while `make dev` runs deleted the state under Dagster's feet."""
    from pipelines.demo import serving_for_dev

    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / DEMO_MARKER).write_text("")
    runs = workdir / "dagster_home" / "runs.db"
    runs.parent.mkdir()
    runs.write_text("dev's runs")

    with serving_for_dev(workdir):
        with pytest.raises(DemoInputError, match="metasync dev"):
            _fresh_workdir(workdir)
        assert runs.read_text() == "dev's runs"
    _fresh_workdir(workdir)  # dev stopped: the demo may start over
    assert not runs.exists()


def test_a_marker_left_by_a_killed_dev_does_not_block_the_demo(tmp_path):
    from pipelines.demo import DEV_PID_FILE, dev_serving

    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / DEMO_MARKER).write_text("")
    (workdir / DEV_PID_FILE).write_text("999999999")  # no such process

    assert dev_serving(workdir) is None
    _fresh_workdir(workdir)


def test_commands_pointed_at_the_demo_state_use_that_folder(isolated_state):
    """With METASYNC_STATE_DIR=.metasync/demo exported (as the README shows), the demo's folder
    is that state folder, not a `demo` folder inside it."""
    from pipelines.demo import demo_folder
    from resources.settings import DEMO_ENV_FILE

    assert demo_folder() == isolated_state / "demo"
    isolated_state.mkdir(parents=True)
    (isolated_state / DEMO_ENV_FILE).write_text("{}")
    assert demo_folder() == isolated_state
