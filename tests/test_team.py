"""Two team members on two machines (issue 14, item 5), played by two git repositories that
share a bare origin, a DVC remote (a local folder) and one `mlflow server` on 127.0.0.1.

The first member is a copy of the session's small run (conftest ``small_run``: its fresh `dvc
repro` is checked in tests/test_e2e.py): they commit dvc.lock and the small git-tracked outputs,
`git push` and `dvc push`; the second clones, `dvc pull`s, and `dvc repro` recomputes nothing.
The second then runs an experiment, logged to the server, and `dvc exp push`es it; the first
`dvc exp pull`s it, sees it in `dvc exp show` and applies it. These are the commands of README
"Scale out: work as a team".
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import (SMALL_RUN_ARCHS, SMALL_RUN_CLASSIFIERS, SMALL_RUN_CURVE_FRACTIONS, SMALL_RUN_FEATURES,
                     copy_finished_repo, mlflow_server, venv_env, warm_env)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy]

FEATURE, CLASSIFIER = "hog", "logreg"
CLASSICAL = f"{FEATURE}-{CLASSIFIER}"
CLASSICAL_MODELS = [f"{f}-{c}" for f in SMALL_RUN_FEATURES for c in SMALL_RUN_CLASSIFIERS]
EXPERIMENT, EXPERIMENT_C = "stronger-penalty", "0.001"  # classical.logreg.C, 1.0 in the shared params
# the outputs DVC caches (never in git): the remote carries them from one member to the other
CACHED = ("data/prepared/split.npz", *(f"data/features/{f}.npz" for f in SMALL_RUN_FEATURES),
          *(f"artifacts/classical/{m}.skops" for m in CLASSICAL_MODELS), *(f"predictions/{m}" for m in CLASSICAL_MODELS),
          *(f"artifacts/cnn/{a}.keras" for a in SMALL_RUN_ARCHS), *(f"predictions/{a}" for a in SMALL_RUN_ARCHS))


@dataclass
class Team:
    root: Path
    origin: Path  # the bare git repository both clone from and push to
    remote: Path  # the DVC remote, a plain folder
    tracking_uri: str
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step, printed at the end
    outputs: dict[str, str] = field(default_factory=dict)  # stdout + stderr of the steps the tests inspect
    commits: dict[str, str] = field(default_factory=dict)  # "pushed": member 1's commit of the run
    runs_before_pull: int = -1  # on the server, before and after member 2's pull + repro
    runs_after_repro: int = -1
    status_after_pull: dict | None = None

    def env(self, clone: Path) -> dict:
        # PYTHONPATH: each clone runs its own code, not the checkout the venv was installed from
        return warm_env({"PYTHONPATH": str(clone), "MLFLOW_TRACKING_URI": self.tracking_uri})

    def run(self, clone: Path, step: str, *cmd: str) -> str:
        start = time.monotonic()
        out = subprocess.run(cmd, cwd=clone, env=self.env(clone), capture_output=True, text=True, timeout=900)
        self.seconds[step] = self.seconds.get(step, 0.0) + time.monotonic() - start
        assert out.returncode == 0, f"{step}: {' '.join(cmd)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
        self.outputs[step] = out.stdout + out.stderr
        return out.stdout

    def clone(self, name: str) -> Path:
        subprocess.run(["git", "clone", "-q", str(self.origin), name], cwd=self.root, check=True, env=venv_env())
        return self.root / name


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes)."""
    h = hashlib.sha256()
    for f in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
        h.update(f.relative_to(path.parent).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def server_runs(uri: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("classic-vs-deep")
    return client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    root = tmp_path_factory.mktemp("team")
    (root / "mlflow").mkdir()
    with mlflow_server(root / "mlflow") as uri:
        team = Team(root, root / "origin.git", root / "dvc-remote", uri)
        yield team
    print("\nwall seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in team.seconds.items()))


@pytest.fixture(scope="module")
def first(team, small_run) -> Path:
    """Member 1, who ran the pipeline (the small run, its local MLflow store left behind: the team
    logs to the server): add the team's DVC remote, commit what git tracks, push to a new bare
    origin and to the DVC remote."""
    clone = copy_finished_repo(small_run, team.root / "first")
    (clone / "mlflow.db").unlink()
    for store in ("mlruns", "mlartifacts"):
        shutil.rmtree(clone / store, ignore_errors=True)
    team.run(clone, "1: dvc remote add", "dvc", "remote", "add", "-d", "team", str(team.remote))
    team.run(clone, "1: git commit", "git", "add", "-A")  # DVC's .gitignore files keep its cached outputs out
    team.run(clone, "1: git commit", "git", "commit", "-qm", "run the pipeline, the team's DVC remote")
    team.run(clone, "1: git init --bare", "git", "init", "-q", "--bare", str(team.origin))
    team.run(clone, "1: git remote add", "git", "remote", "add", "origin", str(team.origin))
    team.run(clone, "1: git push", "git", "push", "-q", "-u", "origin", "HEAD")
    team.run(clone, "1: dvc push", "dvc", "push")
    team.commits["pushed"] = team.run(clone, "git rev-parse", "git", "rev-parse", "HEAD").strip()
    return clone


@pytest.fixture(scope="module")
def second(team, first) -> Path:
    """Member 2: clone what member 1 pushed and pull the data; then the same `dvc repro`."""
    clone = team.clone("second")
    team.runs_before_pull = len(server_runs(team.tracking_uri))
    team.run(clone, "2: dvc pull", "dvc", "pull")
    team.status_after_pull = json.loads(team.run(clone, "2: dvc status", "dvc", "status", "--json"))
    team.run(clone, "2: dvc repro", "dvc", "repro")
    team.runs_after_repro = len(server_runs(team.tracking_uri))
    return clone


@pytest.fixture(scope="module")
def experiment(team, first, second) -> dict:
    """Member 2 runs and pushes an experiment; member 1 pulls it, lists it and applies it."""
    team.run(second, "2: dvc exp run", "dvc", "exp", "run", "-n", EXPERIMENT,
                               "-S", f"classical.{CLASSIFIER}.C={EXPERIMENT_C}")
    team.run(second, "2: dvc exp push", "dvc", "exp", "push", "origin", EXPERIMENT)
    team.run(first, "1: dvc exp pull", "dvc", "exp", "pull", "origin", EXPERIMENT)
    shown = json.loads(team.run(first, "1: dvc exp show", "dvc", "exp", "show", "--json"))
    team.run(first, "1: dvc exp apply", "dvc", "exp", "apply", EXPERIMENT)
    return shown


def test_first_member_commits_the_small_files_and_pushes_the_cached_ones(team, first):
    tracked = set(team.run(first, "git ls-files", "git", "ls-files").split())
    assert {"dvc.lock", f"metrics/classical/{CLASSICAL}.json", *(f"metrics/cnn/{a}.json" for a in SMALL_RUN_ARCHS),
            "reports/leaderboard.csv", "data/prepared/manifest.json"} <= tracked
    for out in CACHED:
        assert (first / out).exists(), out
        assert not any(t == out or t.startswith(out + "/") for t in tracked), f"{out} committed to git"
    # every cached output is in the remote: the cloud status has nothing left to push
    assert json.loads(team.run(first, "1: dvc status -c", "dvc", "status", "-c", "--json")) == {}
    assert any(p.is_file() for p in team.remote.rglob("*"))


def test_second_member_pulls_and_recomputes_nothing(team, first, second):
    for out in CACHED:
        assert digest(second / out) == digest(first / out), out
    assert team.status_after_pull == {}
    repro = team.outputs["2: dvc repro"]
    assert stages_run(repro) == set(), repro
    assert "Data and pipelines are up to date" in repro
    assert team.runs_after_repro == team.runs_before_pull  # nothing trained, nothing logged


def find_experiment(shown: list, name: str) -> dict:
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                if rev.get("name") == name:
                    return rev
    raise AssertionError(f"{name} not in dvc exp show: {[c.get('name') for c in shown]}")


def test_second_members_experiment_reaches_the_first(team, first, second, experiment):
    assert stages_run(team.outputs["2: dvc exp run"]) == ({f"train_classical@{f}-{CLASSIFIER}" for f in SMALL_RUN_FEATURES}
                                                          | {f"learning_curve@{f}" for f in SMALL_RUN_CURVE_FRACTIONS}
                                                          | {"compare", "explain"})
    rev = find_experiment(experiment, EXPERIMENT)
    params = rev["data"]["params"]["params.yaml"]["data"]
    assert params["classical"][CLASSIFIER]["C"] == float(EXPERIMENT_C)
    metrics = rev["data"]["metrics"][f"metrics/classical/{CLASSICAL}.json"]["data"]
    # member 2's workspace holds the experiment's results: member 1 sees the same numbers
    ran = json.loads((second / f"metrics/classical/{CLASSICAL}.json").read_text())
    assert metrics["test_accuracy"] == ran["test_accuracy"]
    committed = json.loads(subprocess.run(["git", "show", f"HEAD:metrics/classical/{CLASSICAL}.json"], cwd=first,
                                          capture_output=True, text=True, check=True).stdout)
    assert metrics["test_accuracy"] != committed["test_accuracy"], "a 1000x stronger penalty changed nothing"
    # `dvc exp pull` brought the experiment's model along: `dvc exp apply` checked it out from the cache
    for out in (f"artifacts/classical/{CLASSICAL}.skops", f"predictions/{CLASSICAL}"):
        assert digest(first / out) == digest(second / out), out


def test_the_server_holds_the_experiments_runs_and_files(team, first, second, experiment, tmp_path):
    import mlflow

    every = server_runs(team.tracking_uri)
    runs = [r for r in every if r.data.tags.get("approach") in ("classical", "deep")]
    assert all(r.info.status == "FINISHED" for r in runs)
    # member 2's pull and no-op repro logged nothing; the experiment's compare logged every classical
    # model from its files (all new to this server), tagged with the experiment and member 1's pushed commit
    assert {r.data.tags.get("dvc_exp_name") for r in runs} == {EXPERIMENT}
    by_model = {r.data.tags["model"]: r for r in runs}
    assert sorted(r.data.tags["model"] for r in runs if r.data.tags["approach"] == "classical") == sorted(CLASSICAL_MODELS)
    assert {r.data.tags["git_commit"] for r in runs} == {team.commits["pushed"]}
    assert by_model[CLASSICAL].data.params["C"] == EXPERIMENT_C
    assert all("test_accuracy" in r.data.metrics and "param_count" in r.data.metrics for r in runs)
    assert {r.data.tags["split_sha256"] for r in runs} == {json.loads(
        (first / "data/prepared/manifest.json").read_text())["sha256"]}
    # the files went to the server too, not to a member's disk: member 1 downloads member 2's report
    for clone in (first, second):
        assert not (clone / "mlflow.db").exists() and not (clone / "mlartifacts").exists(), clone
    comparison = next(r for r in every if r.data.tags.get("approach") == "comparison"
                      and r.data.tags.get("dvc_exp_name") == EXPERIMENT)
    summary = mlflow.artifacts.download_artifacts(run_id=comparison.info.run_id, artifact_path="summary.json",
                                                  tracking_uri=team.tracking_uri, dst_path=str(tmp_path))
    assert Path(summary).read_bytes() == (second / "reports/summary.json").read_bytes()
