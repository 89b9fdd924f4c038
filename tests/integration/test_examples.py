"""Smoke runs of the demo and the benchmarks on tiny settings, so they cannot rot."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import keras_gumbel

ROOT = Path(__file__).resolve().parents[2]


def run(*args, timeout=600, stderr=False):
    """The script's stdout (and its stderr, with `stderr=True`); fails unless it exits with 0."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return (result.stdout, result.stderr) if stderr else result.stdout


@pytest.mark.slow
def test_demo_runs_and_writes_its_outputs(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    stdout, stderr = run("examples/demo.py", "--epochs", "2", "--output", str(tmp_path), stderr=True)
    assert "| reinforce |" in stdout and "served output checked" in stdout
    # What a newcomer sees: a data line, a line per estimator, the table, where the outputs are; no warnings
    # (Keras', TensorFlow's retracing ones, absl's start-up lines), no per-epoch lines.
    noise = [line for line in (stdout + stderr).splitlines() if re.search(r"warn|retracing|Epoch \d", line, re.I)]
    assert not noise, noise
    assert not stderr.strip(), stderr[-3000:]
    assert len(stdout.splitlines()) < 20, stdout  # 12 lines today
    for estimator in ("gumbel_softmax", "straight_through", "reinforce"):
        assert (tmp_path / f"{estimator}.png").stat().st_size > 0
        assert (tmp_path / f"{estimator}.json").exists()
    assert (tmp_path / "straight_through_saved_model" / "saved_model.pb").exists()


@pytest.mark.slow
def test_categorical_vae_example_runs_each_estimator_on_digits(tmp_path):
    for estimator in ("gumbel_softmax", "reinforce"):
        stdout = run(
            "examples/categorical_vae.py",
            "--dataset",
            "digits",
            "--estimator",
            estimator,
            "--epochs",
            "1",
            "--eval-samples",
            "2",
            "--output",
            str(tmp_path),
        )
        assert f"{estimator}: test -ELBO" in stdout
    stdout = run("examples/compare_vae_runs.py", "--runs", str(tmp_path), "--output", str(tmp_path / "curves.png"))
    assert "| reinforce |" in stdout and (tmp_path / "curves.png").exists()


@pytest.mark.slow
def test_bernoulli_vae_example_trains_each_estimator_on_digits(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    args = ["--dataset", "digits", "--steps", "10", "--eval-samples", "3", "--output", str(tmp_path)]
    stdout = run("examples/bernoulli_vae.py", "--estimator", "all", *args)
    estimators = ("disarm", "arm", "reinforce_loo", "relax", "vimco", "straight_through", "gumbel_softmax")
    for estimator in estimators:
        line = re.search(rf"^{estimator}: train ELBO (\S+) test ELBO (\S+) \(test 3-sample bound (\S+)\)", stdout, re.M)
        assert line, stdout
        train_elbo, test_elbo, test_bound = (float(value) for value in line.groups())
        # Finite (a NaN in RELAX's second-order gradient once showed here), and the bound above the ELBO.
        assert -1000 < train_elbo < 0 and -1000 < test_elbo <= test_bound < 0, line.group(0)
    stdout = run("examples/bernoulli_vae.py", "--compare", str(tmp_path), "--figure", str(tmp_path / "curves.png"))
    assert all(f"| linear | {estimator} |" in stdout for estimator in estimators), stdout
    assert (tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_categorical_vae_example_runs_the_sampling_and_exact_estimators(tmp_path):
    smoke = ("--dataset", "digits", "--epochs", "1", "--eval-samples", "2", "--output", str(tmp_path))
    for estimator, extra in (
        ("vimco", ()),
        ("unordered_set", ()),
        ("enumerate", ("--latents", "1")),
        ("rebar", ()),
        ("relax", ()),
    ):
        stdout = run("examples/categorical_vae.py", "--estimator", estimator, *extra, *smoke)
        assert f"{estimator}: test -ELBO" in stdout
        if estimator in ("rebar", "relax"):  # the control variate's temperature was trained from 0.5
            temperature = float(stdout.split("control variate: temperature ")[1].split(",")[0])
            assert math.isfinite(temperature) and temperature != 0.5
    # Enumerating the 10^20 joint codes of 20 latents is refused, with the reason.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    command = [sys.executable, "examples/categorical_vae.py", "--estimator", "enumerate", *smoke]
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "10^20 codes" in refused.stderr


@pytest.mark.slow
def test_speed_benchmark_prints_its_table():
    stdout = run("benchmarks/speed.py", "--quick", "--kernels")
    assert "keras_gumbel.GumbelSoftmax" in stdout and "worst ratio" in stdout
    assert "uniform draw (Philox kernel)" in stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_speed_benchmark_prints_the_other_backends_tables(backend):
    pytest.importorskip(backend)
    stdout = run("benchmarks/speed.py", "--quick", "--backend", backend)
    native = {"jax": "hand-written JAX", "torch": "PyTorch F.gumbel_softmax"}[backend]
    assert "keras_gumbel.ops.gumbel_softmax" in stdout and native in stdout
    assert "worst ratio, straight-through" in stdout


@pytest.mark.slow
def test_reinforce_benchmark_prints_its_tables():
    stdout = run("benchmarks/reinforce.py", "--quick")
    assert "Table 1" in stdout and "leave_one_out" in stdout
    # The estimators against REINFORCE leave-one-out at the same evaluations, and VIMCO by its samples.
    assert re.search(r"^\| RELAX, S = 4 \| 4 \| [0-9.]+ \([0-9.]+\) \|", stdout, re.M), stdout
    assert "| ARM, 2 pairs (bits) | 4 |" in stdout
    assert re.search(r"^\| 16 \| [0-9.]+ \| [0-9.]+ \[", stdout, re.M), stdout


@pytest.mark.slow
def test_estimator_comparison_runs(tmp_path):
    stdout = run("examples/estimator_comparison.py", "--steps", "5", "--seeds", "1", "--output", str(tmp_path))
    assert "reinforce_leave_one_out" in stdout
    assert (tmp_path / "estimator_comparison.png").exists()


@pytest.mark.slow
def test_temperature_figure_runs(tmp_path):
    stdout = run("examples/temperature_figure.py", "--samples", "1000", "--output", str(tmp_path / "t.png"))
    assert "temperature 10.0" in stdout and (tmp_path / "t.png").exists()


@pytest.mark.slow
def test_estimator_quality_benchmark_prints_its_table(tmp_path):
    stdout = run(
        "benchmarks/estimator_quality.py",
        *("--estimates", "200", "--control-steps", "2", "--output", str(tmp_path / "q.png")),
    )
    # One table, every registered estimator (a row of its own for those ROWS lacks), both variables.
    assert "| estimator | evaluations of f (cat. / bin.) | categorical: bias (z) |" in stdout
    table = stdout.split("| estimator | evaluations of f")[1].split("\n\n")[0]
    names = keras_gumbel.estimators.names()
    assert sum(line.startswith("| ") for line in table.splitlines()) >= len(names) + 1  # + VIMCO against E[f]
    assert "| ARM, 2 pairs | - / 4 | n/a | n/a |" in stdout  # binary only
    assert "| enumeration | 4 / 16 |" in stdout  # the whole support: K = 4 categories, 2^4 bit vectors
    assert "| VIMCO, S = 4, against grad E[f] |" in stdout
    assert "| gumbel_rao (10 draws) | 0.5 |" in stdout and (tmp_path / "q.png").exists()


@pytest.mark.slow
def test_hard_attention_experiment_runs(tmp_path):
    stdout = run("examples/hard_attention.py", "--epochs", "1", "--train", "500", "--output", str(tmp_path))
    assert "| reinforce |" in stdout and (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_pure_jax_training_loop_learns_with_the_annealed_layer():
    pytest.importorskip("jax")
    stdout = run("examples/jax_training_loop.py", "--steps", "300")
    assert "step 300: loss" in stdout and "temperature 0.300" in stdout
    accuracy = float(re.search(r"test accuracy of the inference-time codes: ([0-9.]+)", stdout).group(1))
    assert accuracy > 0.5, stdout  # chance is 0.25; 0.71 when written


@pytest.mark.slow
def test_pytorch_training_loop_learns_with_the_annealed_layer():
    pytest.importorskip("torch")
    stdout = run("examples/torch_training_loop.py", "--steps", "200")
    assert "step 200: loss" in stdout and "temperature 0.300" in stdout
    accuracy = float(re.search(r"test accuracy of the inference-time codes: ([0-9.]+)", stdout).group(1))
    assert accuracy > 0.5, stdout  # chance is 0.25; 0.72 when written


@pytest.mark.slow
def test_vector_quantizer_example_learns_a_codebook_and_plots_its_usage(tmp_path):
    stdout = run("examples/vector_quantizer.py", "--epochs", "2", "--output", str(tmp_path / "usage.png"))
    perplexity = {
        label: float(value)
        for label, value in re.findall(
            r"\| (diversity loss, weight 0.1|no diversity loss) \| [0-9.]+ \| ([0-9.]+) \|", stdout
        )
    }
    assert len(perplexity) == 2, stdout
    # The diversity loss keeps more of the codebook in use (17.7 against 5.2 after 2 epochs when written).
    assert perplexity["diversity loss, weight 0.1"] > perplexity["no diversity loss"], stdout
    assert (tmp_path / "usage.png").stat().st_size > 0


@pytest.mark.slow
def test_concrete_autoencoder_example_runs_on_digits(tmp_path):
    pytest.importorskip("sklearn")
    stdout = run(
        "examples/concrete_autoencoder.py",
        "--dataset",
        "digits",
        "--selected",
        "10",
        "--epochs",
        "2",
        "--decoder-epochs",
        "1",
        "--output",
        str(tmp_path),
    )
    assert "| concrete autoencoder (ours) | " in stdout and "| all pixels | 64 |" in stdout, stdout
    assert (tmp_path / "concrete_autoencoder.png").stat().st_size > 0 and (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_sort_numbers_example_learns_to_sort_five_numbers(tmp_path):
    stdout = run(
        "examples/sort_numbers.py", "--sizes", "5", "--steps", "300", "--test-lists", "500", "--output", str(tmp_path)
    )
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    # A random permutation misplaces some number in 119 of 120 lists; the trained network in almost none
    # (none in 500 lists when written, after 300 steps).
    assert results[0]["size"] == 5 and results[0]["prop_any_wrong"] < 0.1, stdout
    assert "| 5 | " in stdout and (tmp_path / "permutations.png").stat().st_size > 0


@pytest.mark.slow
def test_recommender_example_serves_samples_from_litert_and_onnx(tmp_path):
    for module in ("onnxruntime", "tf2onnx", "ai_edge_litert"):
        pytest.importorskip(module)
    stdout = run("examples/recommender.py", "--draws", "1000", "--epochs", "5", "--output", str(tmp_path))
    distances = [float(x) for x in re.findall(r"total variation to the model's distribution ([0-9.]+)", stdout)]
    # 1000 one-hot draws of 12 items: the expected total variation is about 0.04; 0.12 is far in the tail.
    assert len(distances) == 2 and max(distances) < 0.12, stdout
    shown = [int(x) for x in re.findall(r"10 visits showed (\d+) items", stdout)]
    assert len(shown) == 2 and min(shown) > 1, stdout  # the served models vary; the mode would show 1
    assert (tmp_path / "recommender.tflite").stat().st_size > 0 and (tmp_path / "recommender.onnx").stat().st_size > 0


@pytest.mark.slow
def test_pruning_benchmark_prints_its_table():
    pytest.importorskip("sklearn")
    stdout = run(
        "benchmarks/pruning.py", "--data", "digits", "--pre", "2", "--fine", "1", "--targets", "0.5", "--repeats", "5"
    )
    rows = [line for line in stdout.splitlines() if line.startswith("| dense") or line.startswith("| gated")]
    assert len(rows) == 2 + 2 + 3, stdout  # LeNet-300-100 and the conv net: dense, one target; heads: dense, two
    for row in (rows[1], rows[3]):  # the pruned models on the FLOPs target (to a unit), counted
        assert abs(float(row.split("|")[2].split()[0]) - 0.5) < 0.02, stdout
    assert [int(row.split("|")[2]) for row in rows[4:]] == [4, 2, 1], stdout  # the heads kept
