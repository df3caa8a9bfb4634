"""``cvd compare --pair A B``: two configured models on the same test images, compared as the
verdict compares the best of each approach (paired interval and test of ``evaluation.metric``);
prints the result and writes nothing."""
from __future__ import annotations

from comparison import leaderboard, statistics
from comparison.verdict import pair_line
from pipeline import read_results
from pipeline.config import Config
from pipeline.errors import ConfigError


def run(cfg: Config, model_a: str, model_b: str) -> str:
    """``cvd compare --pair A B``: two configured models on the same test images; prints their
    accuracies and the comparison line (returned); nothing is written."""
    ids = cfg.model_ids()
    approach = {m: a for a, models in ids.items() for m in models}
    unknown = [m for m in (model_a, model_b) if m not in approach]
    if unknown:
        raise ConfigError(f"--pair: {', '.join(repr(m) for m in unknown)} not a configured model; configured: "
                          f"{leaderboard.name_list([m for models in ids.values() for m in models], 12)}")
    if model_a == model_b:
        raise ConfigError(f"--pair: needs two different models; got {model_a!r} twice")
    wanted: dict[str, list[str]] = {}
    for m in (model_a, model_b):
        wanted.setdefault(approach[m], []).append(m)
    rows = {r["model"]: r for r in read_results.read_rows(wanted)}
    leaderboard.check_same_split(list(rows.values()))
    a, b = rows[model_a], rows[model_b]
    images = read_results.read_test_images([a, b])
    metric = read_results.metric_for(cfg.evaluation.metric, images)
    settings = statistics.Settings.from_config(cfg, metric.name)
    comparison = settings.compare_models(images.predictions[model_a], images.predictions[model_b])
    line = pair_line(a, b, comparison, settings.level, metric)
    print(f"{model_a} {100 * a['test_accuracy']:.2f} % vs {model_b} {100 * b['test_accuracy']:.2f} % test accuracy "
          f"on the same {images.n:,} test images")
    print(line)
    return line
