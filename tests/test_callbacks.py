"""TemperatureAnnealing: the value used inside the compiled step, logs, resume, selection, errors."""

import csv
import re

import keras
import numpy as np
import pytest

import keras_gumbel
from keras_gumbel import schedules

NUM_SAMPLES, BATCH_SIZE = 64, 8  # 8 steps per epoch
X = np.random.default_rng(0).normal(size=(NUM_SAMPLES, 5)).astype("float32")
Y = np.eye(3, dtype="float32")[np.random.default_rng(1).integers(3, size=NUM_SAMPLES)]
SCHEDULE = schedules.ExponentialDecay(initial=2.0, rate=0.05, minimum=0.3)


class TemperatureProbe(keras.Model):
    """Records, at each optimizer step, the temperature the compiled train step reads."""

    def __init__(self, max_steps=64, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3)
        self.gumbel = keras_gumbel.GumbelSoftmax(temperature=1.0, seed=0, name="gumbel")
        self.seen = self.add_weight(shape=(max_steps,), initializer="zeros", trainable=False, name="seen")
        self.traces = 0

    def call(self, x, training=None):
        return self.gumbel(self.dense(x), training=training)

    def train_step(self, data):
        self.traces += 1  # Python side effect: runs once per trace
        step = keras.ops.cast(self.optimizer.iterations, "int32")
        self.seen.assign(keras.ops.scatter_update(self.seen, [[step]], [self.gumbel.temperature.value]))
        return super().train_step(data)


def compiled_probe(**compile_kwargs):
    model = TemperatureProbe()
    model.compile(keras.optimizers.SGD(0.01), "categorical_crossentropy", **compile_kwargs)
    model(X[:1])  # built, as BackupAndRestore requires
    return model


@pytest.mark.parametrize("jit_compile", [False, True])
def test_value_used_inside_the_compiled_step_follows_the_schedule_step_by_step(jit_compile):
    model = compiled_probe(jit_compile=jit_compile)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=3, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE)])
    steps = np.arange(24)
    np.testing.assert_allclose(model.seen.numpy()[:24], [SCHEDULE(s) for s in steps], rtol=1e-6)
    # The temperature changed 23 times, yet the step was traced no more often than without annealing.
    baseline = compiled_probe(jit_compile=jit_compile)
    baseline.fit(X, Y, batch_size=BATCH_SIZE, epochs=3, verbose=0)
    assert model.traces == baseline.traces <= 2


def test_steps_per_execution_holds_the_value_for_each_block():
    model = compiled_probe(steps_per_execution=4)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=2, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE)])
    expected = [SCHEDULE(4 * (s // 4)) for s in range(16)]
    np.testing.assert_allclose(model.seen.numpy()[:16], expected, rtol=1e-6)


def test_update_every_assigns_every_n_steps():
    model = compiled_probe()
    callback = keras_gumbel.TemperatureAnnealing(SCHEDULE, update_every=3)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(model.seen.numpy()[:8], [SCHEDULE(3 * (s // 3)) for s in range(8)], rtol=1e-6)


def test_history_and_a_later_csv_logger_see_the_temperature(tmp_path):
    model = compiled_probe()
    log = tmp_path / "log.csv"
    history = model.fit(
        X,
        Y,
        batch_size=BATCH_SIZE,
        epochs=3,
        verbose=0,
        callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE), keras.callbacks.CSVLogger(str(log))],
    )
    # The value set before the epoch's last step (steps 7, 15, 23).
    expected = [SCHEDULE(7), SCHEDULE(15), SCHEDULE(23)]
    np.testing.assert_allclose(history.history["temperature"], expected, rtol=1e-6)
    with open(log) as handle:
        rows = list(csv.DictReader(handle))
    np.testing.assert_allclose([float(row["temperature"]) for row in rows], expected, rtol=1e-6)


def test_a_later_tensorboard_callback_plots_the_temperature(tmp_path):
    # docs/temperature.md: TensorBoard needs the `tensorboard` package, which the `examples` extra installs
    # (TensorFlow 2.21 no longer does; without it `fit` fails in tf.summary.scalar).
    pytest.importorskip("tensorboard")
    import tensorflow as tf

    model = compiled_probe()
    callbacks = [keras_gumbel.TemperatureAnnealing(SCHEDULE), keras.callbacks.TensorBoard(str(tmp_path))]
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=2, verbose=0, callbacks=callbacks)
    plotted = {}
    for path in (tmp_path / "train").glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == "epoch_temperature":
                    plotted[event.step] = float(tf.make_ndarray(value.tensor))
    np.testing.assert_allclose([plotted[0], plotted[1]], [SCHEDULE(7), SCHEDULE(15)], rtol=1e-6)


def test_a_second_fit_and_initial_epoch_continue_the_schedule():
    model = compiled_probe()
    annealing = keras_gumbel.TemperatureAnnealing(SCHEDULE)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[annealing])
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=3, initial_epoch=2, verbose=0, callbacks=[annealing])
    np.testing.assert_allclose(model.seen.numpy()[:16], [SCHEDULE(s) for s in range(16)], rtol=1e-6)


def test_backup_and_restore_resumes_the_schedule(tmp_path):
    class StopAtEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    backup = str(tmp_path / "backup")
    model = compiled_probe()
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(
            X,
            Y,
            batch_size=BATCH_SIZE,
            epochs=4,
            verbose=0,
            callbacks=[
                keras.callbacks.BackupAndRestore(backup),
                keras_gumbel.TemperatureAnnealing(SCHEDULE),
                StopAtEpoch(),
            ],
        )
    resumed = compiled_probe()
    history = resumed.fit(
        X,
        Y,
        batch_size=BATCH_SIZE,
        epochs=4,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup), keras_gumbel.TemperatureAnnealing(SCHEDULE)],
    )
    assert int(resumed.optimizer.iterations.numpy()) == 32
    np.testing.assert_allclose(resumed.seen.numpy()[16:32], [SCHEDULE(s) for s in range(16, 32)], rtol=1e-6)
    np.testing.assert_allclose(history.history["temperature"], [SCHEDULE(23), SCHEDULE(31)], rtol=1e-6)


def nested_model(**layer_kwargs):
    inner_input = keras.Input((3,))
    inner = keras.Model(inner_input, keras_gumbel.StraightThroughGumbel(name="inner_st", **layer_kwargs)(inner_input))
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(3)(inputs)
    outputs = keras_gumbel.GumbelSoftmax(name="outer_gs")(inner(hidden) + hidden)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.01), "categorical_crossentropy")
    return model


def test_anneals_every_gumbel_layer_including_nested_models():
    model = nested_model()
    callback = keras_gumbel.TemperatureAnnealing(SCHEDULE)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    assert sorted(layer.name for layer in callback.annealed_layers) == ["inner_st", "outer_gs"]
    for name in ("outer_gs",):
        assert float(model.get_layer(name).temperature.numpy()) == pytest.approx(SCHEDULE(7))
    inner_layer = callback.annealed_layers[[layer.name for layer in callback.annealed_layers].index("inner_st")]
    assert float(inner_layer.temperature.numpy()) == pytest.approx(SCHEDULE(7))


def test_layers_can_be_picked_by_name_or_object():
    model = nested_model()
    callback = keras_gumbel.TemperatureAnnealing(SCHEDULE, layers=["outer_gs"])
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    assert [layer.name for layer in callback.annealed_layers] == ["outer_gs"]
    inner_layer = model.layers[2].layers[-1]
    assert float(inner_layer.temperature.numpy()) == 1.0
    by_object = keras_gumbel.TemperatureAnnealing(SCHEDULE, layers=[inner_layer])
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[by_object])
    assert by_object.annealed_layers == [inner_layer]
    assert float(inner_layer.temperature.numpy()) == pytest.approx(SCHEDULE(15))


def test_learned_temperatures_are_left_to_the_optimizer():
    model = nested_model(trainable_temperature=True)
    callback = keras_gumbel.TemperatureAnnealing(SCHEDULE)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    assert [layer.name for layer in callback.annealed_layers] == ["outer_gs"]
    with pytest.raises(ValueError, match="inner_st.*learns its temperature"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE, ["inner_st"])])


def test_a_model_with_nothing_to_anneal_is_an_error_at_the_start_of_training():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="nothing to anneal"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE)])
    learned = keras.Sequential([keras.Input((5,)), keras_gumbel.GumbelSoftmax(trainable_temperature=True)])
    learned.compile("sgd", "mse")
    with pytest.raises(ValueError, match="learn their temperature"):
        learned.fit(X[:, :3], Y, epochs=1, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE)])


def test_unknown_layer_name_is_an_error():
    model = nested_model()
    with pytest.raises(ValueError, match="layers='nope'"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(SCHEDULE, ["nope"])])


def test_callables_and_learning_rate_schedules_are_accepted():
    for schedule in (
        lambda step: 1.0 / (1.0 + step),
        keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=4, decay_rate=0.5),
    ):
        model = compiled_probe()
        model.fit(
            X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)]
        )
        expected = [float(keras.ops.convert_to_numpy(schedule(s))) for s in range(8)]
        np.testing.assert_allclose(model.seen.numpy()[:8], expected, rtol=1e-6)


def test_a_schedule_returning_a_non_positive_value_is_an_error():
    model = compiled_probe()
    with pytest.raises(ValueError, match=r"temperature=-1.0 at step 0"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(lambda step: -1.0)])


@pytest.mark.parametrize(
    "bad, shown",
    [
        (1e-45, "1e-45"),  # positive in float64, 0 (or a denormal) in float32: NaN losses
        (1e-39, "1e-39"),  # a float32 denormal
        (2e-38, "2e-38"),  # below the temperature floor, 2**-104: logits / 2e-38 overflow float32
        (1e39, "1e+39"),  # inf in float32
        (0.0, "0.0"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-1.0, "-1.0"),
    ],
)
def test_a_schedule_value_the_layer_would_refuse_is_an_error_naming_step_and_value(bad, shown):
    model = compiled_probe()
    callback = keras_gumbel.TemperatureAnnealing(lambda step: 0.7 if step < 3 else bad)
    with pytest.raises(ValueError, match=rf"temperature={re.escape(shown)} at step 3\b"):
        model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    assert model.gumbel.temperature.numpy() == np.float32(0.7)  # the bad value was never assigned
    with pytest.raises(ValueError):
        keras_gumbel.GumbelSoftmax(temperature=bad)  # the same rule as the layer's constructor


def test_verbose_prints_changes(capsys):
    model = compiled_probe()
    callback = keras_gumbel.TemperatureAnnealing(schedules.Constant(0.5), verbose=1)
    model.fit(X, Y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    printed = capsys.readouterr().out
    assert printed.count("set the temperature to 0.5") == 1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"schedule": 0.5}, TypeError, "schedule=0.5"),
        ({"schedule": SCHEDULE, "layers": "gumbel"}, TypeError, "layers='gumbel'"),
        ({"schedule": SCHEDULE, "update_every": 0}, ValueError, "update_every=0"),
        ({"schedule": SCHEDULE, "verbose": "yes"}, TypeError, "verbose='yes'"),
    ],
)
def test_bad_arguments_name_argument_and_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        keras_gumbel.TemperatureAnnealing(**kwargs)


def test_works_in_a_tf_function_free_custom_loop_by_calling_the_schedule():
    # Outside fit, a schedule is a plain function of the step.
    layer = keras_gumbel.GumbelSoftmax()
    logits = np.array([[0.5, -1.0, 2.0]], "float32")
    for step in (0, 10, 30):  # t = 2.0, 1.21, 0.45
        layer.temperature.assign(SCHEDULE(step))
        # The layer's inference output uses the scheduled temperature: softmax(logits / t(step)).
        expected = np.exp(logits / SCHEDULE(step)) / np.exp(logits / SCHEDULE(step)).sum()
        np.testing.assert_allclose(layer(logits).numpy(), expected, rtol=1e-5)
