"""``faceanim bench`` on a few real frames: the wall-clock end to end and the stage sum, each labelled."""

from faceanim.cli import main
from faceanim.errors import FaceAnimError
from faceanim.eval.bench import BenchSettings, format_bench, run_bench
from faceanim.render import registry


def test_bench_reports_wall_clock_next_to_the_stage_sum(portrait, clip, monkeypatch):
    def needs_weights():
        raise FaceAnimError("weights not found", path="weights/none.safetensors")

    monkeypatch.setitem(registry._FACTORIES, "needs-weights", needs_weights)
    result = run_bench(portrait("liveportrait_s42.jpg"), clip("liveportrait_d10.mp4"), ["identity", "needs-weights"],
                       BenchSettings(frames=8, warmup=1))
    r = result["renderers"]["identity"]
    e2e = r["end_to_end"]
    assert e2e["frames"] == 8 and e2e["bytes"] > 0  # the real job wrote a real file
    assert e2e["ms_per_frame"] == 1000 * e2e["seconds"] / 8 and e2e["fps"] == 8 / e2e["seconds"]
    assert set(r["stages"]) >= {"decode", "landmarks+session", "motion", "render", "paste_back", "encode"}
    assert r["stage_sum_ms"] == sum(s["median_ms"] for s in r["stages"].values())
    assert r["ratio_to_reference"]["end_to_end"] > 0 and r["end_to_end"]["peak_rss_mb"] > 50
    text = format_bench(result)
    assert "end to end" in text and "wall clock" in text and "stage sum" in text
    assert "needs-weights: not measured: weights/none.safetensors: weights not found" in text  # the rest still ran


def test_bench_missing_source_is_one_line(clip, tmp_path, capsys):
    code = main(["bench", "--source", str(tmp_path / "none.jpg"), "--clip", str(clip("liveportrait_d10.mp4"))])
    err = capsys.readouterr().err
    assert code != 0 and "none.jpg" in err and "Traceback" not in err
