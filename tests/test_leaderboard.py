"""comparison.leaderboard on small generated rows: ranking, selection on validation, summary, the three tables."""
from __future__ import annotations

import csv
import io

import pytest

from comparison import leaderboard, tables
from comparison.errors import ComparisonError

SPLIT = "c" * 64


def row(model: str, approach: str, acc: float, *, f1: float | None = None, params: int = 1000,
        fit: float | None = 1.0, size: int | None = 50_000, split: str = SPLIT, val: float | None = None) -> dict:
    feature, _, classifier = model.partition("-") if approach == "classical" else ("", "", "")
    return {"approach": approach, "model": model, "feature": feature, "classifier": classifier,
            "arch": model if approach == "deep" else "", "test_accuracy": acc, "macro_f1": acc if f1 is None else f1,
            "val_accuracy": acc if val is None else val, "param_count": params,
            "model_bytes": size, "fit_seconds": fit, "predict_images_per_s": 1234.5, "dataset": "digits",
            "split_sha256": split, "mlflow_run_id": ""}


def test_ties_share_the_better_rank_and_break_by_f1_then_size_then_id():
    ranked = leaderboard.rank_rows([
        row("b-knn", "classical", 0.9, f1=0.8, params=10),
        row("a-knn", "classical", 0.9, f1=0.8, params=10),
        row("lenet5", "deep", 0.9, f1=0.85, params=50),
        row("c-knn", "classical", 0.9, f1=0.8, params=5),
        row("alexnet", "deep", 0.95),
        row("d-knn", "classical", 0.5),
    ])
    assert [r["model"] for r in ranked] == ["alexnet", "lenet5", "c-knn", "a-knn", "b-knn", "d-knn"]
    assert [r["rank"] for r in ranked] == [1, 2, 2, 2, 2, 6]


def test_rows_on_different_splits_are_named():
    rows = [row("a-knn", "classical", 0.9), row("b-knn", "classical", 0.8),
            row("lenet5", "deep", 0.7, split="d" * 64)]
    assert leaderboard.check_same_split(rows[:2]) == SPLIT
    with pytest.raises(ComparisonError, match=r"a-knn, b-knn on split cccccccccccc; lenet5 on split dddddddddddd"):
        leaderboard.check_same_split(rows)


def test_selection_uses_validation_not_test():
    rows = leaderboard.rank_rows([
        row("a-knn", "classical", 0.99, val=0.90),  # the best on test
        row("b-knn", "classical", 0.95, val=0.93, params=8),
        row("c-knn", "classical", 0.80, val=0.93, params=7),  # ties b-knn on validation, fewer parameters
        row("lenet5", "deep", 0.97, val=0.91, params=5),
        row("alexnet", "deep", 0.93, val=0.91, params=5),  # ties lenet5 on validation and size: by id
    ])
    best = leaderboard.select_best(rows)
    assert best["classical"]["model"] == "c-knn" and best["deep"]["model"] == "alexnet"
    assert [r["model"] for r in rows][:2] == ["a-knn", "lenet5"]  # the table stays ranked by test accuracy
    assert leaderboard.select_best(rows[:1]) == {"classical": rows[0], "deep": None}


def test_selection_needs_validation_accuracy():
    rows = [row("a-knn", "classical", 0.9), {**row("lenet5", "deep", 0.9), "val_accuracy": None}]
    with pytest.raises(ComparisonError, match=r"no val_accuracy recorded for lenet5: .*chosen on validation accuracy"):
        leaderboard.select_best(rows)


def test_summary_takes_the_best_of_each_approach_on_validation():
    rows = leaderboard.rank_rows([row("a-knn", "classical", 0.90, params=7, fit=0.5, val=0.96),
                                  row("b-knn", "classical", 0.95, params=8, fit=0.25, val=0.94),
                                  row("lenet5", "deep", 0.97, params=9, fit=12.0),
                                  row("alexnet", "deep", 0.93)])
    next(r for r in rows if r["model"] == "a-knn").update(test_accuracy_ci_low=0.85, test_accuracy_ci_high=0.93)
    verdict = {"difference": 0.07, "ci_low": 0.01, "ci_high": 0.12, "p_value": 0.02, "only_classical": 1,
               "only_deep": 8, "n_test": 100, "significant": True, "images_needed": 150, "winner": "deep"}
    summary = leaderboard.build_summary(rows, verdict)
    assert summary["best_classical"] == {"model": "a-knn", "val_accuracy": 0.96, "test_accuracy": 0.90,
                                         "test_accuracy_ci_low": 0.85, "test_accuracy_ci_high": 0.93,
                                         "val_balanced_accuracy": None, "balanced_accuracy": None,
                                         "balanced_accuracy_ci_low": None, "balanced_accuracy_ci_high": None,
                                         "macro_f1": 0.90, "param_count": 7, "fit_seconds": 0.5, "repeats": None,
                                         "test_accuracy_mean": None, "test_accuracy_sd": None}
    assert summary["best_deep"]["model"] == "lenet5" and summary["best_deep"]["test_accuracy_ci_low"] is None
    assert summary["accuracy_difference"] == pytest.approx(0.07) and summary["selection"] == "validation accuracy"
    assert summary["verdict"] == verdict and summary["winner"] == "deep"  # no means recorded: no mean_difference
    assert (summary["n_models"], summary["dataset"], summary["split_sha256"]) == (4, "digits", SPLIT)
    assert leaderboard.subtitle(summary) == "digits, 4 models, split cccccccccccc"
    alone = leaderboard.build_summary([row("raw-knn", "classical", 0.5)])
    assert alone["best_deep"] is None and alone["verdict"] is None and alone["winner"] is None
    assert alone["accuracy_difference"] is None


@pytest.fixture
def ranked():
    rows = leaderboard.rank_rows([
        row("hog-rbf_svm", "classical", 0.988889, params=1_553_175, fit=0.004, size=12_500_000, val=0.9812),
        row("lenet5", "deep", 0.991667, params=61_706, fit=123.4, size=283_000, val=0.99),
        {**row("raw-knn", "classical", 0.5, params=10, fit=None, size=None), "val_accuracy": None},
    ])
    # as comparison.statistics.with_statistics adds them (raw-knn: an older file without intervals)
    rows[0].update(test_accuracy_ci_low=0.97579, test_accuracy_ci_high=0.997162, macro_f1_ci_low=0.98,
                   macro_f1_ci_high=0.996, n_test=360, near_top="yes", p_value_vs_top=None, balanced_accuracy=0.991)
    rows[1].update(test_accuracy_ci_low=0.97178, test_accuracy_ci_high=0.995671, macro_f1_ci_low=0.975,
                   macro_f1_ci_high=0.994, n_test=360, near_top="yes", p_value_vs_top=0.75, balanced_accuracy=0.988)
    rows[2].update(n_test=360, near_top="", p_value_vs_top=1e-40)
    return rows


def test_csv_has_the_columns_and_plain_values(ranked):
    records = list(csv.DictReader(io.StringIO(leaderboard.csv_text(ranked))))
    assert list(records[0]) == leaderboard.CSV_COLUMNS
    assert [r["model"] for r in records] == ["lenet5", "hog-rbf_svm", "raw-knn"]
    assert records[0]["model_bytes"] == "283000" and records[0]["test_accuracy"] == "0.991667"
    assert records[2]["model_bytes"] == "" and records[2]["fit_seconds"] == "" and records[2]["val_accuracy"] == ""
    assert records[1]["feature"] == "hog" and records[1]["classifier"] == "rbf_svm" and records[0]["arch"] == "lenet5"
    assert (records[0]["test_accuracy_ci_low"], records[0]["test_accuracy_ci_high"]) == ("0.97579", "0.997162")
    assert (records[1]["macro_f1_ci_low"], records[1]["macro_f1_ci_high"]) == ("0.975", "0.994")
    assert [r["near_top"] for r in records] == ["yes", "yes", ""]
    assert [r["p_value_vs_top"] for r in records] == ["", "0.75", "1e-40"]
    assert records[2]["test_accuracy_ci_low"] == "" and records[0]["val_accuracy"] == "0.99"


def test_markdown_table_columns_alignment_legend_and_code_ids(ranked):
    md = leaderboard.markdown_table(ranked, "Leaderboard: test", "the verdict")
    lines = md.splitlines()
    assert lines[0] == "# Leaderboard: test" and lines[-1] == "the verdict" and md.endswith("\n")
    table = [line for line in lines if line.startswith("|")]
    headers = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert headers == [header for header, _, _ in leaderboard.DISPLAY]
    assert headers[5:11] == ["test acc %", "95 % CI", "≈ top", "val acc %", "bal acc %", "macro-F1"]
    rule = [cell.strip() for cell in table[1].strip("|").split("|")]
    assert [cell.endswith(":") and not cell.startswith(":") for cell in rule] == [
        align == "right" for _, align, _ in leaderboard.DISPLAY]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert cells[0] == ["1", "deep", "`lenet5`", "lenet5", "-", "99.17", "[97.6, 99.7]", "yes", "99.00", "99.10",
                        "0.9917", "61,706", "123", "1,234", "283.0 KB"]
    assert cells[1][5:] == ["98.89", "[97.2, 99.6]", "yes", "98.12", "98.80", "0.9889", "1,553,175", "0.004",
                            "1,234", "12.5 MB"]
    assert cells[2][5:9] == ["50.00", "-", "", "-"] and cells[2][-3:] == ["-", "1,234", "-"]
    legend = lines[lines.index(table[-1]) + 2]
    assert legend.startswith("95 % CI: Wilson interval of the test accuracy on 360 test images. ≈ top: yes = not "
                             "significantly worse than #1 `lenet5` (the 95 % paired-bootstrap interval")
    assert legend.endswith("the verdict compares the best model of each approach by validation accuracy.")


def test_interval_level_names_the_column():
    assert leaderboard.columns("90 %")[6][0] == "90 % CI"
    rows = leaderboard.rank_rows([row("a-knn", "classical", 0.9)])
    assert " test acc %    90 % CI " in leaderboard.text_table(rows, "90 %").splitlines()[0]
    assert leaderboard.legend(rows, "90 %").startswith("90 % CI: Wilson interval of the test accuracy. ≈ top: ")


def test_printed_table_aligns_text_left_and_numbers_right(ranked):
    lines = leaderboard.text_table(ranked).splitlines()
    assert len(lines) == 2 + len(ranked) and set(lines[1]) == {"-", " "}
    assert lines[0].split()[:3] == ["#", "approach", "model"]
    starts = {line.index(name) for line, name in zip(lines[2:], ("deep", "classical", "classical"))}
    assert len(starts) == 1  # the approach column is left-aligned
    assert len({len(line) for line in lines}) == 1  # the last column (size) is right-aligned: equal line ends
    assert "1,553,175" in lines[3] and "12.5 MB" in lines[3] and " 0.004 " in lines[3]
    assert " [97.2, 99.6] " in lines[3] and " yes " in lines[3]
    assert all(line == line.rstrip() for line in lines)


# --- repeats (evaluation.repeats): mean ± sd over the seeds --------------------------------------

SEED_KEYS = ("repeats", "test_accuracy_mean", "test_accuracy_sd", "macro_f1_mean", "macro_f1_sd", "val_accuracy_mean")


def with_seeds(r: dict, repeats: int, mean: float, sd: float, **extra) -> dict:
    """``r`` with the per-seed summary a train stage records (comparison.results.model_row passes it on)."""
    return {**r, "repeats": repeats, "test_accuracy_mean": mean, "test_accuracy_sd": sd,
            "macro_f1_mean": mean - 0.001, "macro_f1_sd": sd, "val_accuracy_mean": r["val_accuracy"],
            "per_seed": {"seed": list(range(repeats)), "test_accuracy": [mean] * repeats}, **extra}


def test_one_seed_per_model_prints_exactly_the_tables_without_seed_keys(ranked):
    ones = [with_seeds(r, 1, r["test_accuracy"], 0.0) for r in ranked]
    ones[2] = {**ranked[2], "repeats": None}  # an older file: no seed summary at all
    for fmt in (lambda rows: leaderboard.markdown_table(rows, "Leaderboard: test", "the verdict"),
                leaderboard.text_table, leaderboard.legend):
        assert fmt(ones) == fmt(ranked)
    assert leaderboard.SEEDS_HEADER not in leaderboard.markdown_table(ones, "t", "v")
    assert [h for h, _, _ in leaderboard.columns()] == [h for h, _, _ in leaderboard.DISPLAY]
    assert len(leaderboard.DISPLAY) == 15 and "mean" not in leaderboard.legend(ones)


def test_seed_column_appears_when_a_model_has_several_seeds(ranked):
    rows = [with_seeds(ranked[0], 3, 0.979, 0.003), with_seeds(ranked[1], 1, 0.988889, 0.0), ranked[2]]
    md = leaderboard.markdown_table(rows, "Leaderboard: test", "the verdict")
    table = [line for line in md.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert headers[5:9] == ["test acc %", "95 % CI", "mean ± sd (seeds)", "≈ top"] and len(headers) == 16
    rule = [cell.strip() for cell in table[1].strip("|").split("|")]
    assert rule[7].endswith(":") and not rule[7].startswith(":")  # right-aligned
    assert [[c.strip() for c in line.strip("|").split("|")][7] for line in table[2:]] == ["97.9 ± 0.3 (3)", "-", "-"]
    assert [[c.strip() for c in line.strip("|").split("|")][5] for line in table[2:]] == ["99.17", "98.89", "50.00"]
    assert "mean ± sd (seeds): mean and sample sd of the test accuracy over the training seeds" in md
    printed = leaderboard.text_table(rows).splitlines()
    assert "mean ± sd (seeds)" in printed[0] and " [97.6, 99.7]       97.9 ± 0.3 (3)  yes " in printed[2]
    # an sd below 0.05 points gets the decimals it needs, and the mean as many
    assert tables._seeds(with_seeds(ranked[0], 5, 0.99125, 0.0004)) == "99.12 ± 0.04 (5)"
    assert tables._seeds(with_seeds(ranked[0], 2, 0.99, 0.0)) == "99.0 ± 0.0 (2)"


def test_csv_always_carries_the_seed_columns(ranked):
    rows = [with_seeds(ranked[0], 3, 0.979, 0.003), with_seeds(ranked[1], 1, 0.988889, 0.0), ranked[2]]
    records = list(csv.DictReader(io.StringIO(leaderboard.csv_text(rows))))
    assert set(SEED_KEYS) <= set(records[0]) and list(records[0]) == leaderboard.CSV_COLUMNS
    assert [records[0][k] for k in SEED_KEYS] == ["3", "0.979", "0.003", "0.978", "0.003", "0.99"]
    assert [records[1][k] for k in SEED_KEYS] == ["1", "0.988889", "0.0", "0.987889", "0.0", "0.9812"]
    assert [records[2][k] for k in SEED_KEYS] == [""] * 6
    plain = list(csv.DictReader(io.StringIO(leaderboard.csv_text(ranked))))
    assert all(r[k] == "" for r in plain for k in SEED_KEYS)


def test_summary_carries_the_means_and_their_difference():
    rows = leaderboard.rank_rows([
        with_seeds(row("sobel-logreg", "classical", 0.99, val=0.97), 1, 0.99, 0.0),
        with_seeds(row("lenet5", "deep", 0.975, val=0.96), 5, 0.9712, 0.0041),
        # the best mean validation accuracy, but selection is on the first seed's: not chosen
        with_seeds(row("alexnet", "deep", 0.95, val=0.955), 5, 0.95, 0.01, val_accuracy_mean=0.99)])
    verdict = {"difference": -0.015, "significant": False, "winner": "no significant difference"}
    summary = leaderboard.build_summary(rows, verdict)
    assert {k: summary["best_deep"][k] for k in ("model", "repeats", "test_accuracy_mean", "test_accuracy_sd")} == {
        "model": "lenet5", "repeats": 5, "test_accuracy_mean": 0.9712, "test_accuracy_sd": 0.0041}
    assert (summary["best_classical"]["repeats"], summary["best_classical"]["test_accuracy_sd"]) == (1, 0.0)
    assert summary["verdict"] == {**verdict, "mean_difference": pytest.approx(-0.0188, abs=1e-9)}
    assert "mean_difference" not in verdict  # the caller's dict is left alone
    older = leaderboard.build_summary([rows[0], {**rows[1], "test_accuracy_mean": None}], verdict)
    assert "mean_difference" not in older["verdict"] and older["best_deep"]["test_accuracy_mean"] is None
