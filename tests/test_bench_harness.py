"""benchmarks/common.py, the timing harness: every contender warmed up and timed alike, per-item
statistics and ratios, and no results written on a busy machine (only to scratch with --force)."""

from __future__ import annotations

import json
import math
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


STAT = """cpu  1000 20 300 9000 50 7 3 10 40 0
cpu0 500 10 150 4500 25 4 2 5 20 0
cpu1 500 10 150 4500 25 3 1 5 20 0
intr 123456 0 0
ctxt 987654
"""


def test_proc_stat_busy_jiffies_leave_out_idle_iowait_and_guest():
    assert common.busy_jiffies(STAT) == 1000 + 20 + 300 + 7 + 3 + 10  # user nice system irq softirq steal
    with pytest.raises(ValueError, match="no aggregate 'cpu' line"):
        common.busy_jiffies("cpu0 1 2 3 4 5 6 7 8\n")


def test_machine_busy_cpu_s_converts_ticks_to_seconds(tmp_path):
    (tmp_path / "stat").write_text(STAT)
    assert common.machine_busy_cpu_s(tmp_path / "stat") == pytest.approx(1340 / common.os.sysconf("SC_CLK_TCK"))
    assert common.machine_busy_cpu_s() > 0  # the real /proc/stat parses


class FakeReadings:
    """Stands in for :func:`common.reading`: the clock and busy CPU-seconds the test sets."""

    STEP = 2.0  # s between samples, as LOAD_SAMPLE_S

    def __init__(self) -> None:
        self.now = self.machine = self.own = 0.0

    def __call__(self) -> tuple[float, float, float]:
        return self.now, self.machine, self.own

    def run(self, session: common.Session, seconds: float, own_cpus: float, others_cpus: float) -> None:
        """Advance ``seconds`` in sample steps, this benchmark and the others busy on the given CPUs."""
        for _ in range(round(seconds / self.STEP)):
            self.now += self.STEP
            self.own += own_cpus * self.STEP
            self.machine += (own_cpus + others_cpus) * self.STEP
            session.sample(*self())


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(common, "cpus", lambda: 2)
    return tmp_path


@pytest.fixture
def readings(monkeypatch) -> FakeReadings:
    fake = FakeReadings()
    monkeypatch.setattr(common, "reading", fake)
    monkeypatch.setattr(common, "LOAD_SAMPLE_S", 3600.0)  # the session's own thread stays out of the test
    return fake


def _load(monkeypatch, value: float) -> None:
    monkeypatch.setattr(common.os, "getloadavg", lambda: (value, value, value))


def test_quiet_machine_writes_results_with_machine_and_load(folders, readings, monkeypatch):
    _load(monkeypatch, 0.5)
    session = common.Session("quiet")
    readings.run(session, 30, own_cpus=1.0, others_cpus=0.05)
    path = session.write({"answer": 42})
    assert path == folders / "results" / "quiet.json"
    data = json.loads(path.read_text())
    assert data["answer"] == 42 and data["forced"] is False
    load = data["load"]
    assert load["cpus"] == 2 and load["start_1_5_15"] == [0.5] * 3 and load["end_1_5_15"] == [0.5] * 3
    assert load["own_mean_busy_cpus"] == 1.0 and load["others_busy_cpus_mean"] == 0.05
    assert load["session_wall_s"] == 30.0 and 0 < load["others_busy_cpus_max_1min"] < 0.05
    assert "max_load_of_others_1min" not in load and "/proc/stat" in load["rule"]
    assert {"date", "packages", "git_commit", "cpu"} <= set(data["machine"])


def test_busy_machine_refuses_at_start(folders, readings, monkeypatch, capsys):
    _load(monkeypatch, 2.5)
    with pytest.raises(SystemExit) as exc:
        common.Session("busy")
    assert exc.value.code == 3 and "exceeds the 2 CPUs" in capsys.readouterr().err
    assert not (folders / "results").exists()


def test_own_threads_on_a_quiet_machine_are_not_refused(folders, readings, monkeypatch):
    """8 threads on 2 cores drive the load average to ~8 while only this benchmark runs: the
    old rule (load average minus own busy CPUs > cpus) refused this; the machine's busy CPU
    time equals our own, so others are 0."""
    _load(monkeypatch, 0.3)
    session = common.Session("threads")
    _load(monkeypatch, 8.0)
    readings.run(session, 120, own_cpus=2.0, others_cpus=0.0)
    load = json.loads(session.write({"answer": 42}).read_text())["load"]
    assert load["end_1_5_15"] == [8.0] * 3 and load["own_mean_busy_cpus"] == 2.0
    assert load["others_busy_cpus_max_1min"] == 0.0 and load["others_busy_cpus_mean"] == 0.0


def test_one_other_busy_cpu_for_a_minute_refuses_at_write(folders, readings, monkeypatch, capsys):
    _load(monkeypatch, 0.3)  # the load average stays low: the refusal comes from the CPU time alone
    session = common.Session("rising")
    readings.run(session, 60, own_cpus=1.0, others_cpus=1.0)
    assert session.others_1min == pytest.approx(1 - math.exp(-1), rel=1e-9)  # the kernel's 1-minute average
    with pytest.raises(SystemExit) as exc:
        session.write({"answer": 42})
    err = capsys.readouterr().err
    assert exc.value.code == 3 and "other processes kept 0.63 CPUs busy" in err
    assert json.loads(err.splitlines()[0])["others_busy_cpus_mean"] == 1.0
    assert not (folders / "results").exists()


def test_a_short_burst_of_others_stays_under_the_threshold(folders, readings, monkeypatch):
    _load(monkeypatch, 0.3)
    session = common.Session("burst")
    readings.run(session, 10, own_cpus=1.0, others_cpus=2.0)  # 10 s of both cores: average 0.31
    readings.run(session, 50, own_cpus=1.0, others_cpus=0.0)
    assert session.others_max_1min == pytest.approx(2 * (1 - math.exp(-10 / 60)), rel=1e-9)
    assert session.write({"answer": 42}) == folders / "results" / "burst.json"


def test_own_cpu_beyond_the_machine_counts_as_no_others(folders, readings, monkeypatch):
    """A reaped child's CPU time arrives in one lump: a negative difference is clipped, not averaged in."""
    _load(monkeypatch, 0.3)
    session = common.Session("lump")
    assert session.sample(2.0, 1.0, 5.0) == 0.0 and session.others_1min == 0.0
    assert session.sample(2.0, 9.0, 5.0) == 0.0  # no time passed: nothing to average


def test_force_writes_to_scratch_whatever_the_load(folders, readings, monkeypatch):
    _load(monkeypatch, 9.0)
    session = common.Session("dev", force=True)
    readings.run(session, 60, own_cpus=0.0, others_cpus=2.0)
    path = session.write({"answer": 42})
    assert path == folders / "scratch" / "dev.json" and not (folders / "results").exists()
    data = json.loads(path.read_text())
    assert data["forced"] is True and data["load"]["others_busy_cpus_max_1min"] > common.OTHERS_MAX_CPUS


def test_real_readings_count_this_process_busy(folders, monkeypatch):
    """The real sampler: burning CPU here shows in own and machine busy CPU-seconds alike."""
    _load(monkeypatch, 0.3)
    session = common.Session("real", force=True)
    t0, machine0, own0 = common.reading()
    while common.reading()[2] - own0 < 0.2:
        sum(range(10_000))
    t1, machine1, own1 = common.reading()
    assert session.sample(t1, machine1, own1) >= 0.0
    assert own1 - own0 >= 0.2 and machine1 - machine0 >= 0.1  # ticks are 10 ms: allow for rounding
    load = json.loads(session.write({}).read_text())["load"]
    assert load["own_mean_busy_cpus"] > 0.3 and load["session_wall_s"] >= 0.0
