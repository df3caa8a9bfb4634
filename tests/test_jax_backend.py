"""The Keras code runs unchanged on the JAX backend (how a GPU machine without TensorFlow runs it).

Each test starts a fresh interpreter with ``KERAS_BACKEND=jax`` (the backend is fixed at
the first ``import keras``), on CPU. Skipped when JAX is not installed (it is in the
``test`` extras).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import REPO_ROOT, make_split, new_mlflow_store, venv_env

pytest.importorskip("jax")


def run_with_jax(code: str, cwd: Path, extra_env: dict | None = None) -> dict:
    """Run ``code`` under KERAS_BACKEND=jax; it must print one JSON object as its last line."""
    env = venv_env({"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT),
                    **(extra_env or {})})
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_architectures_give_the_lecture_counts_without_tensorflow(tmp_path):
    result = run_with_jax("""
        import json, sys
        import keras
        from models.architectures import get
        lenet = get("lenet5").build(input_shape=(28, 28, 1), num_classes=10)
        lecture = get("alexnet").build(input_shape=(227, 227, 3), num_classes=1000, variant="lecture")
        small = get("alexnet").build(input_shape=(32, 32, 1), num_classes=10, variant="original", image_size=63)
        resnet = get("resnet20").build()
        x = keras.ops.ones((2, 32, 32, 3))
        print(json.dumps({"backend": keras.backend.backend(), "tf": "tensorflow" in sys.modules,
                          "lenet": lenet.count_params(), "lecture": lecture.count_params(),
                          "small_out": list(small.output_shape), "resnet": resnet.count_params(),
                          "resnet_sums": keras.ops.convert_to_numpy(resnet(x, training=True).sum(axis=1)).tolist()}))
    """, tmp_path)
    assert result["backend"] == "jax"
    assert result["tf"] is False  # models/ uses keras.ops only
    assert result["lenet"] == 61_706
    assert result["lecture"] == 28_823_912
    assert result["small_out"] == [None, 10]
    assert result["resnet"] == 271_098  # batch norm, the option-A shortcut's layers and the sums run on JAX
    assert result["resnet_sums"] == pytest.approx([1.0, 1.0], abs=1e-5)


@pytest.mark.slow
def test_train_cnn_stage_runs_on_jax(tmp_path):
    """The real stage (1 epoch, tiny split) on JAX: model, metrics and an MLflow run tagged backend=jax."""

    from pipeline.io import save_split

    save_split(tmp_path / "data/prepared/split.npz", make_split())
    result = run_with_jax("""
        import json, yaml
        from pipeline.config import parse_config
        from pipeline import train_cnn
        raw = yaml.safe_load(open(%r))
        raw["mlflow"]["experiment"] = "test-jax"
        raw["cnn"].update({"epochs": 1, "batch_size": 16, "mixed_precision": "auto"})
        out = train_cnn.run(parse_config(raw), "lenet5")
        print(json.dumps({k: out[k] for k in ("test_accuracy", "param_count", "mlflow_run_id", "device")}))
    """ % str(REPO_ROOT / "params.yaml"), tmp_path,
        {"MLFLOW_TRACKING_URI": new_mlflow_store(tmp_path), "CVD_PIPELINE_RUN": "test-jax"})

    assert result["param_count"] == 61_706 - 84 * 10 - 10 + 84 * 3 + 3  # 3 classes instead of 10
    # the bands of make_split are separable after one epoch; chance is 1/3
    assert result["test_accuracy"] >= 0.9 and result["device"] == "cpu"
    assert (tmp_path / "artifacts/cnn/lenet5.keras").is_file()
    scores = json.loads((tmp_path / "metrics/cnn/lenet5.json").read_text())
    assert scores["test_accuracy"] == result["test_accuracy"]

    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(result["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["backend"] == "jax" and run.data.tags["device"] == "cpu"
    assert run.data.params["precision_policy"] == "float32"  # mixed precision "auto" stays off on a CPU
    assert "history.loss" in run.data.metrics
