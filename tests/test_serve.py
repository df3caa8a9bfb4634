"""The registered champion served: real `dvc repro`, `mlflow models serve`, an HTTP request.

The session's small run (conftest ``small_run``: raw and HOG features x logistic regression and
k-NN, and a LeNet-5 that cannot beat them on validation, so the champion is a classical model)
registered its champion; `mlflow models serve -m models:/classic-vs-deep-digits@champion
--env-manager local` on a free 127.0.0.1 port answers two test images with the classes the stage
predicted for them and that `cvd predict` gives for the same images saved as PNG files.
"""
from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import free_port, venv_env, wait_until_answering

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "classic-vs-deep-digits"


@pytest.fixture(scope="module")
def repo(small_run) -> Path:
    return small_run


def tracking_env(repo: Path) -> dict:
    return venv_env({"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"})


@contextlib.contextmanager
def served(repo: Path, uri: str, cwd: Path, timeout: float = 180):
    """`mlflow models serve` of ``uri`` on a free 127.0.0.1 port; yields its base URL."""
    port = free_port()
    log = (cwd / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=cwd, env=tracking_env(repo), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, f"{url}/ping", "mlflow models serve", timeout, log=cwd / "serve.log")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def post_images(url: str, images: np.ndarray) -> np.ndarray:
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps({"inputs": images.tolist()}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return np.asarray(json.loads(response.read())["predictions"])


def test_served_champion_answers_like_the_stage_and_cvd_predict(repo, tmp_path):
    import cv2
    from mlflow import MlflowClient

    from pipeline import registry
    from pipeline.io import load_split

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    summary = json.loads((repo / "reports/summary.json").read_text())
    champion = client.get_model_version_by_alias(NAME, "champion")
    model = champion.tags["model"]
    assert model == registry.choose(summary)["champion"] == summary["best_classical"]["model"]
    assert client.get_model_version_by_alias(NAME, "best-classical").version == champion.version
    assert client.get_model_version_by_alias(NAME, "best-deep").tags["model"] == "lenet5"

    split = load_split(repo / "data/prepared/split.npz")
    class_names = json.loads((repo / "data/prepared/manifest.json").read_text())["class_names"]
    picks = [0, int(np.flatnonzero(split.y["test"] != split.y["test"][0])[0])]  # two different true classes
    images = split.x["test"][picks]
    with open(repo / f"predictions/{model}/test.csv", newline="") as fh:
        stage = [class_names[int(r["y_pred"])] for r in csv.DictReader(fh)]

    with served(repo, f"models:/{NAME}@champion", tmp_path) as url:
        answer = post_images(url, images)
    assert [class_names[int(i)] for i in answer] == [stage[i] for i in picks]

    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in zip(picks, images):
        cv2.imwrite(str(folder / f"test{i:04d}.png"), image)
    out = subprocess.run(["cvd", "predict", f"models:/{NAME}@champion", str(folder), "--out", str(tmp_path / "p.csv")],
                         cwd=repo, env=tracking_env(repo), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(tmp_path / "p.csv", newline="") as fh:
        predicted = {Path(r["path"]).name: r["class"] for r in csv.DictReader(fh)}
    assert [predicted[f"test{i:04d}.png"] for i in picks] == [stage[i] for i in picks]
