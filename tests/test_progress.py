"""Console output: bars on a terminal, plain lines elsewhere (no carriage returns), --quiet and --verbose."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vlprompt
from vlprompt import progress as pg


@pytest.fixture
def console(monkeypatch):
    """Off a terminal; the console handler is reset afterwards."""
    monkeypatch.setattr(pg, "is_tty", lambda: False)
    yield
    pg.configure()


def test_lines_off_a_terminal(console, capsys):
    pg.configure()
    for _ in pg.progress(range(8), desc="encoding", unit="img", interval=0):
        pass
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("encoding: 25% (2/8 img, ")
    assert [line.split(":")[1].split()[0] for line in err.splitlines()] == ["25%", "50%", "75%", "done"]
    assert "\r" not in err


def test_short_loops_and_quiet_print_nothing(console, capsys):
    pg.configure()
    with pg.progress(total=4, desc="fast") as bar:  # well under the default 10 s between lines
        bar.update(4)
    pg.configure(quiet=True)
    for _ in pg.progress(range(4), desc="quiet", interval=0):
        pass
    assert capsys.readouterr().err == ""


def test_console_verbosity(console, capsys):
    log = logging.getLogger("vlprompt.test")
    for quiet, verbose, expected in [
        (False, False, ["epoch line", "warning: careful"]),
        (True, False, ["warning: careful"]),
        (False, True, ["[vlprompt.test] debug line", "info line", "epoch line", "warning: careful"]),
    ]:
        pg.configure(quiet=quiet, verbose=verbose)
        log.debug("debug line")
        log.info("info line")
        log.info("epoch line", extra=pg.CONSOLE)
        log.warning("careful")
        assert capsys.readouterr().err.splitlines() == expected


def test_train_to_a_file_has_no_carriage_returns(tmp_path, cli_env, tiny_folder):
    """`vlprompt train ... > log 2>&1`: one line per epoch, no progress-bar frames."""
    env = dict(os.environ, PYTHONPATH=str(Path(vlprompt.__file__).parents[1]), VLPROMPT_CACHE=str(tmp_path / "c"))
    args = [sys.executable, "-m", "vlprompt", "train", "--method", "coop", "--dataset", "folder", "--data-root",
            str(tiny_folder), "--epochs", "2", "--batch-size", "4", "--set", "coop.n_ctx=2", *cli_env]  # fmt: skip
    with open(tmp_path / "log", "w") as fh:
        proc = subprocess.run([*args, "--out", str(tmp_path / "run")], stdout=fh, stderr=subprocess.STDOUT, env=env)
    text = (tmp_path / "log").read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text
    # one record per epoch (a slow machine may add plain progress lines "epoch 1/2: 50% ...", never \r frames)
    assert [line.split()[1] for line in text.splitlines() if line.startswith("epoch ") and "%" not in line] == [
        "1/2",
        "2/2",
    ]
    assert "* accuracy:" in text
    with open(tmp_path / "quiet", "w") as fh:
        subprocess.run([*args, "--out", str(tmp_path / "q"), "--quiet"], stdout=fh, stderr=subprocess.STDOUT, env=env)
    assert "epoch" not in (tmp_path / "quiet").read_text() and (tmp_path / "q" / "results.json").is_file()
