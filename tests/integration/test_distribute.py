"""tf.distribute: per-replica noise, fit with annealing, REINFORCE; multi-worker custom loops.

Each check runs in fresh processes (logical devices and TF_CONFIG must be set before TensorFlow starts).
"""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parents[1]))


def run_check(script):
    """Runs a check script in a fresh process; returns the JSON line it printed last."""
    result = subprocess.run([sys.executable, str(HERE / script)], env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus():
    measured = run_check("distributed_mirrored_check.py")
    assert measured["replicas"] == 2
    # Each replica of our layers draws its own noise. (The script also records whether plain
    # keras.random draws the same on both replicas, the Keras quirk this works around; not asserted,
    # so that a Keras fix does not fail our suite.)
    assert measured["gumbel_softmax_replicas_differ"] and measured["straight_through_replicas_differ"]
    assert all(math.isfinite(loss) for loss in measured["fit_losses"])
    assert measured["fit_temperatures"] == pytest.approx(measured["expected_temperatures"], rel=1e-6)
    assert measured["reinforce_greedy_reward"] == 1.0


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_custom_loop_with_two_local_workers(tmp_path):
    ports = [str(free_port()), str(free_port())]
    outputs = [tmp_path / f"worker{index}.json" for index in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "distributed_multi_worker_check.py"), *ports, str(index), str(outputs[index])],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
    first, second = (json.loads(path.read_text()) for path in outputs)
    assert first["replicas"] == second["replicas"] == 2
    assert first["replica_samples_differ"] and second["replica_samples_differ"]
    assert first["kernels_agree_marker"] == second["kernels_agree_marker"]  # synchronous training
    assert first["accuracy_after"] > first["accuracy_before"] and first["accuracy_after"] >= 0.9
    assert first["reinforce_rewards"][1] > 0.9 > first["reinforce_rewards"][0]


@pytest.mark.slow
def test_keras_data_parallel_on_jax_with_two_cpu_devices():
    pytest.importorskip("jax")
    measured = run_check("distributed_jax_data_parallel_check.py")
    assert measured["devices"] == 2
    assert measured["halves_differ"]
    assert measured["losses"][1] < measured["losses"][0]
    assert measured["temperatures"] == pytest.approx(measured["expected_temperatures"], rel=1e-6)
    assert measured["accuracy"] > 0.85
