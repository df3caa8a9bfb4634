"""pipeline.leaderboard on small generated rows: ranking, summary, verdict, the three tables."""
from __future__ import annotations

import csv
import io

import pytest

from pipeline import leaderboard
from pipeline.errors import DataError

SPLIT = "c" * 64


def row(model: str, approach: str, acc: float, *, f1: float | None = None, params: int = 1000,
        fit: float | None = 1.0, size: int | None = 50_000, split: str = SPLIT) -> dict:
    feature, _, classifier = model.partition("-") if approach == "classical" else ("", "", "")
    return {"approach": approach, "model": model, "feature": feature, "classifier": classifier,
            "arch": model if approach == "deep" else "", "test_accuracy": acc,
            "macro_f1": acc if f1 is None else f1, "val_accuracy": None, "param_count": params,
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
    with pytest.raises(DataError, match=r"a-knn, b-knn on split cccccccccccc; lenet5 on split dddddddddddd"):
        leaderboard.check_same_split(rows)


def test_summary_takes_the_best_of_each_approach():
    rows = leaderboard.rank_rows([row("a-knn", "classical", 0.90, params=7, fit=0.5),
                                  row("b-knn", "classical", 0.95, params=8, fit=0.25),
                                  row("lenet5", "deep", 0.97, params=9, fit=12.0),
                                  row("alexnet", "deep", 0.93)])
    summary = leaderboard.build_summary(rows)
    assert summary["best_classical"] == {"model": "b-knn", "test_accuracy": 0.95, "param_count": 8,
                                         "fit_seconds": 0.25}
    assert summary["best_deep"]["model"] == "lenet5"
    assert summary["accuracy_difference"] == pytest.approx(0.02) and summary["winner"] == "deep"
    assert (summary["n_models"], summary["dataset"], summary["split_sha256"]) == (4, "digits", SPLIT)
    assert leaderboard.subtitle(summary) == "digits, 4 models, split cccccccccccc"


def _verdict(*rows):
    return leaderboard.verdict(leaderboard.build_summary(leaderboard.rank_rows(rows)))


def test_verdict_texts():
    assert _verdict(row("hog-svm", "classical", 0.9, params=123_456, fit=0.4),
                    row("lenet5", "deep", 0.95, params=61_706, fit=312.0)) == (
        "deep wins by 5.0 points: lenet5 95.0 % vs hog-svm 90.0 %, with 61,706 vs 123,456 parameters "
        "and 312 s vs 0.4 s fit")
    # a difference of 0.004 points is printed with enough decimals not to read as 0.0
    assert _verdict(row("hog-svm", "classical", 0.97444, fit=0.004),
                    row("lenet5", "deep", 0.9744, fit=None)).startswith(
        "classical wins by 0.004 points: hog-svm 97.444 % vs lenet5 97.440 %")
    assert _verdict(row("hog-svm", "classical", 0.9, fit=0.004), row("lenet5", "deep", 0.9, fit=None)) == (
        "tie at 90.0 %: lenet5 vs hog-svm, with 1,000 vs 1,000 parameters and ? s vs 0.004 s fit")
    assert _verdict(row("lenet5", "deep", 0.9), row("alexnet", "deep", 0.8)) == (
        "only deep models to compare: best lenet5 90.00 %")
    summary = leaderboard.build_summary([row("raw-knn", "classical", 0.5)])
    assert summary["winner"] is None and summary["accuracy_difference"] is None and summary["best_deep"] is None
    assert leaderboard.verdict(summary) == "only classical models to compare: best raw-knn 50.00 %"


@pytest.fixture
def ranked():
    return leaderboard.rank_rows([
        row("hog-rbf_svm", "classical", 0.988889, params=1_553_175, fit=0.004, size=12_500_000),
        row("lenet5", "deep", 0.991667, params=61_706, fit=123.4, size=283_000),
        row("raw-knn", "classical", 0.5, params=10, fit=None, size=None),
    ])


def test_csv_has_the_columns_and_plain_values(ranked):
    records = list(csv.DictReader(io.StringIO(leaderboard.csv_text(ranked))))
    assert list(records[0]) == leaderboard.CSV_COLUMNS
    assert [r["model"] for r in records] == ["lenet5", "hog-rbf_svm", "raw-knn"]
    assert records[0]["model_bytes"] == "283000" and records[0]["test_accuracy"] == "0.991667"
    assert records[2]["model_bytes"] == "" and records[2]["fit_seconds"] == "" and records[2]["val_accuracy"] == ""
    assert records[1]["feature"] == "hog" and records[1]["classifier"] == "rbf_svm" and records[0]["arch"] == "lenet5"


def test_markdown_table_columns_alignment_and_code_ids(ranked):
    md = leaderboard.markdown_table(ranked, "Leaderboard: test", "the verdict")
    lines = md.splitlines()
    assert lines[0] == "# Leaderboard: test" and lines[-1] == "the verdict" and md.endswith("\n")
    table = [line for line in lines if line.startswith("|")]
    headers = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert headers == [header for header, _, _ in leaderboard.DISPLAY]
    rule = [cell.strip() for cell in table[1].strip("|").split("|")]
    assert [cell.endswith(":") and not cell.startswith(":") for cell in rule] == [
        align == "right" for _, align, _ in leaderboard.DISPLAY]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert cells[0] == ["1", "deep", "`lenet5`", "lenet5", "-", "99.17", "0.9917", "61,706", "123", "1,234",
                        "283.0 KB"]
    assert cells[1][5:] == ["98.89", "0.9889", "1,553,175", "0.004", "1,234", "12.5 MB"]
    assert cells[2][-3:] == ["-", "1,234", "-"]


def test_printed_table_aligns_text_left_and_numbers_right(ranked):
    lines = leaderboard.text_table(ranked).splitlines()
    assert len(lines) == 2 + len(ranked) and set(lines[1]) == {"-", " "}
    assert lines[0].split()[:3] == ["#", "approach", "model"]
    starts = {line.index(name) for line, name in zip(lines[2:], ("deep", "classical", "classical"))}
    assert len(starts) == 1  # the approach column is left-aligned
    assert len({len(line) for line in lines}) == 1  # the last column (size) is right-aligned: equal line ends
    assert "1,553,175" in lines[3] and "12.5 MB" in lines[3] and " 0.004 " in lines[3]
    assert all(line == line.rstrip() for line in lines)
