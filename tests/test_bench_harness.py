"""benchmarks/common.py, the timing harness: every contender warmed up and timed alike, per-item
statistics and ratios, and no results written on a busy machine (only to scratch with --force)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import common  # noqa: E402


def test_compare_warms_up_and_times_every_contender_alike():
    calls: list[str] = []
    a = common.Contender("a", lambda: calls.append("a") or len(calls), items=10, setup_s=1.5)
    b = common.Contender("b", lambda: calls.append("b"), items=2, after=lambda _: {"stages_s": {"fit": 1.0}})
    out = common.compare([a, b], repeats=5, warmup=2)
    assert calls[:4] == ["a", "a", "b", "b"]  # the same warm-up for both, untimed
    assert calls[4:] == ["a", "b"] * 5  # then alternating timed runs
    for name, items in (("a", 10), ("b", 2)):
        row = out[name]
        assert row["repeats"] == 5 and len(row["times_s"]) == 5 and row["warmup_runs"] == 2
        assert row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["per_item_ms"]["median"] == pytest.approx(1e3 * row["median_s"] / items)
        assert row["items_per_s"] == pytest.approx(items / row["median_s"])
    assert out["a"]["setup_s"] == 1.5 and out["b"]["setup_s"] is None
    assert out["b"]["per_run"] == [{"stages_s": {"fit": 1.0}}] * 5 and "per_run" not in out["a"]
    assert a.last == len(calls) - 1  # the last run's value is kept


def test_ratio_is_per_item_with_the_worst_and_best_pairings():
    ours = common.summarize([1.0, 2.0, 4.0], items=100)  # 10, 20, 40 ms per item
    ref = common.summarize([0.5, 1.0, 2.0], items=5)  # 100, 200, 400 ms per item
    r = common.ratio(ours, ref)
    assert r["median"] == pytest.approx(10.0)
    assert r["low"] == pytest.approx(100 / 40) and r["high"] == pytest.approx(400 / 10)


def test_stage_breakdown_takes_medians_and_tolerates_runs_without_timings():
    runs = [{"stages_s": {"read": r, "fit": 2 * r}, "wall_s": 4 * r, "items": 10} for r in (1.0, 3.0, 2.0)]
    out = common.stage_breakdown([None, *runs])
    assert out["stages_s_median"] == {"fit": 4.0, "read": 2.0} and out["wall_s_median"] == 8.0
    assert out["per_item_ms_median"]["read"] == pytest.approx(200.0) and out["runs"] == 3
    assert common.stage_breakdown([None, None]) is None


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(common, "cpus", lambda: 2)
    return tmp_path


def _load(monkeypatch, value: float) -> None:
    monkeypatch.setattr(common.os, "getloadavg", lambda: (value, value, value))


def test_quiet_machine_writes_results_with_machine_and_load(folders, monkeypatch):
    _load(monkeypatch, 0.5)
    path = common.Session("quiet").write({"answer": 42})
    assert path == folders / "results" / "quiet.json"
    data = json.loads(path.read_text())
    assert data["answer"] == 42 and data["forced"] is False
    assert data["load"]["cpus"] == 2 and data["load"]["start_1_5_15"] == [0.5] * 3
    assert {"date", "packages", "git_commit", "cpu"} <= set(data["machine"])


def test_busy_machine_refuses_at_start(folders, monkeypatch, capsys):
    _load(monkeypatch, 2.5)
    with pytest.raises(SystemExit) as exc:
        common.Session("busy")
    assert exc.value.code == 3 and "exceeds the 2 CPUs" in capsys.readouterr().err
    assert not (folders / "results").exists()


def test_load_rising_during_the_run_refuses_at_write(folders, monkeypatch, capsys):
    _load(monkeypatch, 1.0)
    session = common.Session("rising")
    _load(monkeypatch, 6.0)  # others' load: this process is idle, so all of it is theirs
    with pytest.raises(SystemExit):
        session.write({"answer": 42})
    assert "load of other processes" in capsys.readouterr().err
    assert not (folders / "results").exists()


def test_force_writes_to_scratch_whatever_the_load(folders, monkeypatch):
    _load(monkeypatch, 9.0)
    path = common.Session("dev", force=True).write({"answer": 42})
    assert path == folders / "scratch" / "dev.json" and not (folders / "results").exists()
    assert json.loads(path.read_text())["forced"] is True
