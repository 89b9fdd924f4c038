"""The Bernoulli VAE of the DisARM paper (Dong, Mnih & Tucker, 2020), trained with keras-gumbel's estimators.

200 independent Bernoulli latent variables b with a learned factorised prior
p(b) = Bernoulli(sigmoid(prior_logits)), a Bernoulli decoder p(x | b) and an
encoder q(b | x) = Bernoulli(sigmoid(encoder(x))), on dynamically binarized
MNIST. The model and the settings are those of the paper's reference code
(google-research/google-research, `disarm/binary/experiment_launcher_singlelayer.py`
and `networks.py`, with `--demean_input --initialize_with_bias` as its README runs it):

- `--model linear`: encoder 784-200 and decoder 200-784, one dense layer each;
  `--model nonlinear`: 784-200-200-200 and 200-200-200-784 with LeakyReLU(0.3);
- the encoder sees `x - mean(train)`, the decoder `2 b - 1`; the decoder's last
  bias starts at the logit of the mean training image (clipped to [0.001, 0.999]);
- Adam with learning rate 1e-4 for the encoder and for the decoder, plain SGD
  with learning rate 1e-2 for the prior's logits, batch 50;
- the estimator's value: the per-example ELBO term
  `f(b) = log p(x | b) + log p(b) - log q(b | x)`.

Estimators (`--estimator`), each through the package's pure functions:

- `disarm` (`keras_gumbel.estimators.antithetic_bernoulli`, `disarm_loss`) and
  `arm` (`arm_loss`): one antithetic pair per image, 2 evaluations of f;
- `reinforce_loo`: `keras_gumbel.score_function_loss` with
  `leave_one_out_baseline` over 2 independent samples, 2 evaluations of f;
- `relax` (`keras_gumbel.estimators.relax_gradient`, `relax_loss`,
  `relax_variance`): one sample, the control variate of the reference code,
  `c(z) = scale * (f(sigmoid(z / t)) + net([x, z]))` with a learned temperature
  (from 0.1), scale (from 1) and net (one hidden layer of 137 LeakyReLU(0.3)
  units), trained to minimise the estimator's variance (Adam, 1e-4,
  beta_1 = 0.999): f at b, f at the two relaxed draws, and a second-order
  backward pass;
- `vimco` (`keras_gumbel.estimators.vimco_loss`): the K-sample bound
  (`--samples`, default 2: the same 2 evaluations of f) with VIMCO's
  leave-one-out baselines; decoder, prior and encoder all take its gradient;
- `straight_through` and `gumbel_softmax`: `keras_gumbel.ops.relaxed_bernoulli`
  (`hard=True`: exact 0/1 samples forward, the relaxed gradient backward; or the
  relaxed sample itself), 1 evaluation, with the exact KL of q(b | x) to p(b) and
  the temperature max(0.5, exp(-3e-5 step)) updated every 500 steps (Jang et
  al.'s schedule, as `examples/categorical_vae.py`).

For the score-function family the encoder gets only the estimator's gradient
(the score term; the term `-grad log q(b | x)` of the direct gradient has
expectation 0 and is left out, as the reference code leaves it out) and the
decoder and prior the gradient of the mean ELBO at the same samples (the
reference code draws one more sample for them).

Reported, for every estimator alike (the paper's two metrics):
- train ELBO: the 1-sample ELBO averaged over the 50,000 training images
  (binarized once, with a fixed seed), as the reference code's
  `eval_metric/train`;
- test: the 100-sample bound `log mean_k exp(f(b_k))` and the ELBO (the mean of
  the same 100 values of f) over the 10,000 test images (binarized once).
The curve: the 1-sample ELBO of 2,000 fixed training images every
`--eval-every` steps.

Data as `examples/categorical_vae.py` loads it (its `load_images`: the classic
`mnist.pkl.gz`, 50k/10k/10k, whose training set is the first 50k of MNIST's, as
the reference code's `train[:50000]`), or `--dataset digits` (scikit-learn's
8x8 digits, no download) for smoke runs.

Usage:
    python examples/bernoulli_vae.py --estimator disarm --steps 20000
    python examples/bernoulli_vae.py --compare outputs/bernoulli_vae --figure docs/figures/bernoulli_vae.png
    python examples/bernoulli_vae.py --dataset digits --steps 20 --estimator all   # smoke run
"""

import argparse
import json
import math
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import estimators  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from categorical_vae import binarize_once  # noqa: E402
from categorical_vae import load_images  # noqa: E402

ESTIMATORS = ("disarm", "arm", "reinforce_loo", "relax", "vimco", "straight_through", "gumbel_softmax")
RELAXED = ("straight_through", "gumbel_softmax")
NUM_LATENTS = 200


# ----------------------------------------------------------------------------- model
class BernoulliVAE:
    """Encoder, decoder and prior logits of the reference code's single-layer binary VAE."""

    def __init__(self, train_mean, model="linear", num_latents=NUM_LATENTS):
        input_dim = train_mean.shape[0]
        hidden = {"linear": (), "nonlinear": (200, 200)}[model]
        # The reference initialises the decoder's output bias at the data's logit, so f starts near a sensible value.
        clipped = np.clip(train_mean, 0.001, 0.999)
        output_bias = keras.initializers.Constant(np.log(clipped) - np.log1p(-clipped))
        self.train_mean = tf.constant(train_mean, "float32")
        self.encoder = keras.Sequential(
            [keras.Input((input_dim,))]
            + [keras.layers.Dense(units, activation=keras.layers.LeakyReLU(0.3)) for units in hidden]
            + [keras.layers.Dense(num_latents)],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.Input((num_latents,))]
            + [keras.layers.Dense(units, activation=keras.layers.LeakyReLU(0.3)) for units in hidden]
            + [keras.layers.Dense(input_dim, bias_initializer=output_bias)],
            name="decoder",
        )
        self.prior_logits = keras.Variable(np.zeros(num_latents, "float32"), name="prior_logits")

    def encoder_logits(self, images):
        return self.encoder(images - self.train_mean)

    def log_likelihood(self, images, codes):
        """log p(x | b), summed over pixels: codes [..., B, D] (0/1 or relaxed) against images [B, P]."""
        logits = _apply_on_last_axis(self.decoder, 2.0 * codes - 1.0)
        images = tf.broadcast_to(images, tf.shape(logits))
        return -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(images, logits), -1)

    def log_prior(self, codes):
        return _bernoulli_log_prob(self.prior_logits, codes)

    def elbo_terms(self, images, codes, encoder_logits):
        """f(b) = log p(x | b) + log p(b) - log q(b | x), one value per code: [..., B]."""
        return self.log_likelihood(images, codes) + self.log_prior(codes) - _bernoulli_log_prob(encoder_logits, codes)

    def kl_to_prior(self, encoder_logits):
        """KL(q(b | x) || p(b)), exact, summed over the latents: [B]."""
        q_one, q_zero = tf.math.log_sigmoid(encoder_logits), tf.math.log_sigmoid(-encoder_logits)
        p_one, p_zero = tf.math.log_sigmoid(self.prior_logits), tf.math.log_sigmoid(-self.prior_logits)
        probability = tf.sigmoid(encoder_logits)
        return tf.reduce_sum(probability * (q_one - p_one) + (1.0 - probability) * (q_zero - p_zero), -1)

    @property
    def parts(self):
        return {
            "encoder": self.encoder.trainable_variables,
            "decoder": self.decoder.trainable_variables,
            "prior": [self.prior_logits],
        }


def _uniform(shape, seed):
    """Uniforms on [tiny, 1), as the package's estimators draw them: log(u) and log(1 - u) stay finite.

    A draw of exactly 0 (about one in 2^23 in float32) would make the relaxation's z infinite and RELAX's
    second-order gradient NaN.
    """
    return tf.random.stateless_uniform(shape, seed, minval=np.finfo("float32").tiny)


def _apply_on_last_axis(network, inputs):
    """`network` (a model of rank-2 inputs) on every row of `inputs` [..., D]."""
    outputs = network(tf.reshape(inputs, [-1, inputs.shape[-1]]))
    return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], tf.shape(outputs)[-1:]], 0))


def _bernoulli_log_prob(logits, codes):
    """sum_d [b log sigmoid(l) + (1 - b) log sigmoid(-l)] (also for relaxed b in [0, 1], as tfd.Bernoulli)."""
    return tf.reduce_sum(codes * logits - tf.nn.softplus(logits), -1)


class RelaxControlVariate:
    """The reference code's RELAX control variate: c(z) = scale * (f(sigmoid(z / t)) + net([x, z]))."""

    def __init__(self, input_dim, num_latents=NUM_LATENTS):
        self.net = keras.Sequential(
            [
                keras.Input((input_dim + num_latents,)),
                keras.layers.Dense(137, activation=keras.layers.LeakyReLU(0.3)),
                keras.layers.Dense(1),
            ],
            name="relax_net",
        )
        self.log_temperature = keras.Variable(math.log(0.1), name="log_temperature")
        self.scale = keras.Variable(1.0, name="scale")

    @property
    def variables(self):
        return [*self.net.trainable_variables, self.log_temperature, self.scale]

    def __call__(self, model, images, encoder_logits, z):
        """z [N, B, D] -> [N, B]. The encoder's logits enter as constants: c must be a fixed function of z."""
        relaxed = tf.sigmoid(z / tf.exp(self.log_temperature.value))
        value = model.elbo_terms(images, relaxed, tf.stop_gradient(encoder_logits))
        images = tf.broadcast_to(images, tf.concat([tf.shape(z)[:-1], tf.shape(images)[-1:]], 0))
        net_value = tf.squeeze(_apply_on_last_axis(self.net, tf.concat([images, z], -1)), -1)
        return self.scale.value * (value + net_value)


# ----------------------------------------------------------------------------- training
def evaluations_per_step(estimator, samples):
    """Evaluations of f (decoder passes) per image and step: hard samples, plus relaxed ones for RELAX."""
    return {"vimco": samples, "relax": 3, "straight_through": 1, "gumbel_softmax": 1}.get(estimator, 2)


def make_step(model, estimator, optimizers, samples=2, control=None):
    """One training step `step(images, seed, temperature) -> mean ELBO term`; the estimator decides the losses."""

    def step(images, seed, temperature):
        batch = tf.shape(images)[0]
        with tf.GradientTape(persistent=True) as tape:
            logits = model.encoder_logits(images)
            shape = tf.stack([samples if estimator == "vimco" else 1, batch, NUM_LATENTS])
            if estimator in ("disarm", "arm"):
                # One antithetic pair per image: b = 1[u < sigmoid(l)], b~ = 1[1 - u < sigmoid(l)].
                uniform = _uniform(shape, seed)
                pair = estimators.antithetic_bernoulli(tf.stop_gradient(logits), uniform)
                values = model.elbo_terms(images, tf.concat(pair, 0), logits)  # [2, B]
                reward = tf.stop_gradient(values)
                if estimator == "disarm":
                    encoder_loss = estimators.disarm_loss(logits, uniform, reward[:1], reward[1:])
                else:
                    encoder_loss = estimators.arm_loss(logits, uniform, reward[:1], reward[1:])
                model_loss = -tf.reduce_mean(values)
            elif estimator == "reinforce_loo":
                uniform = _uniform(tf.stack([2, batch, NUM_LATENTS]), seed)
                codes = tf.cast(uniform < tf.sigmoid(tf.stop_gradient(logits)), "float32")
                values = model.elbo_terms(images, codes, logits)  # [2, B]
                reward = tf.stop_gradient(values)
                log_q = _bernoulli_log_prob(logits, codes)
                baseline = keras_gumbel.leave_one_out_baseline(reward, axis=0)
                encoder_loss = keras_gumbel.score_function_loss(log_q, reward, baseline)
                model_loss = -tf.reduce_mean(values)
            elif estimator == "vimco":
                uniform = _uniform(shape, seed)
                codes = tf.cast(uniform < tf.sigmoid(tf.stop_gradient(logits)), "float32")
                log_q = _bernoulli_log_prob(logits, codes)
                log_joint = model.log_likelihood(images, codes) + model.log_prior(codes)
                values = log_joint - log_q  # the log-weights, differentiable in every part of the model
                model_loss = encoder_loss = estimators.vimco_loss(log_prob=log_q, log_weights=values)
            elif estimator == "relax":
                noise = _uniform(tf.stack([2, 1, batch, NUM_LATENTS]), seed)
                kept = []  # f at the hard sample, with its gradient to the decoder and prior

                def reward_fn(codes):
                    kept.append(model.elbo_terms(images, codes, logits))
                    return kept[-1]

                def control_variate(z):
                    return control(model, images, logits, z)

                gradient, _ = estimators.relax_gradient(
                    logits, reward_fn, control_variate, noise[0], noise[1], binary=True
                )
                encoder_loss = estimators.relax_loss(logits, gradient)
                variance_loss = estimators.relax_variance(gradient)
                values = kept[0]
                model_loss = -tf.reduce_mean(values)
            else:
                codes = keras_gumbel.ops.relaxed_bernoulli(
                    logits, temperature=temperature, hard=estimator == "straight_through", seed=seed
                )
                # The exact KL: the relaxed estimators differentiate log p(x | b) through the sample.
                reconstruction = model.log_likelihood(images, codes)
                kl = model.kl_to_prior(logits)
                model_loss = encoder_loss = -tf.reduce_mean(reconstruction - kl)
                values = reconstruction - kl
        parts = model.parts
        updates = [
            (optimizers["encoder"], tape.gradient(encoder_loss, parts["encoder"]), parts["encoder"]),
            (optimizers["decoder"], tape.gradient(model_loss, parts["decoder"]), parts["decoder"]),
            (optimizers["prior"], tape.gradient(model_loss, parts["prior"]), parts["prior"]),
        ]
        if estimator == "relax":
            updates.append((optimizers["control"], tape.gradient(variance_loss, control.variables), control.variables))
        del tape
        for optimizer, gradients, variables in updates:
            optimizer.apply_gradients(zip(gradients, variables))
        return tf.reduce_mean(values)

    return step


def make_chunk(step, train_images, seed):
    """Runs `len(indices)` steps in one graph: batches gathered from `train_images` and binarized afresh."""

    @tf.function(reduce_retracing=True)
    def chunk(indices, first_step, temperature):
        total = tf.constant(0.0)
        for i in tf.range(tf.shape(indices)[0]):
            number = tf.cast(first_step + i, "int32")
            grey = tf.gather(train_images, indices[i])
            images = tf.cast(tf.random.stateless_uniform(tf.shape(grey), [seed, 2 * number]) < grey, "float32")
            total += step(images, tf.stack([seed + 1, 2 * number + 1]), temperature)
        return total / tf.cast(tf.shape(indices)[0], "float32")

    return chunk


def make_bound(model, max_samples=100):
    """`bound(images, num_samples, seed) -> (log mean_k exp f_k, mean_k f_k)` per image, f at binary samples of q."""

    @tf.function(reduce_retracing=True)
    def bound(images, num_samples, seed):
        logits = model.encoder_logits(images)
        shape = tf.stack([num_samples, tf.shape(images)[0], NUM_LATENTS])
        codes = tf.cast(tf.random.stateless_uniform(shape, seed) < tf.sigmoid(logits), "float32")
        values = model.elbo_terms(images, codes, logits)  # [K, B]
        count = tf.cast(num_samples, "float32")
        return tf.reduce_logsumexp(values, 0) - tf.math.log(count), tf.reduce_mean(values, 0)

    return bound


def evaluate(bound, images, num_samples, seed=7, batch_size=100):
    """(mean bound, mean ELBO, standard error of the bound) over `images`, in nats; the same draws at every call."""
    bounds, elbos = [], []
    for number, start in enumerate(range(0, len(images), batch_size)):
        batch = tf.constant(images[start : start + batch_size])
        log_mean, mean = bound(batch, tf.constant(num_samples), tf.constant([seed, number]))
        bounds.append(log_mean.numpy())
        elbos.append(mean.numpy())
    bounds, elbos = np.concatenate(bounds), np.concatenate(elbos)
    return float(bounds.mean()), float(elbos.mean()), float(bounds.std() / np.sqrt(len(bounds)))


def batch_indices(num_images, batch_size, steps, seed):
    """The reference's shuffled stream of batches: each epoch a fresh permutation, cut into batches."""
    rng = np.random.default_rng(seed)
    per_epoch = num_images // batch_size
    epochs = [rng.permutation(num_images)[: per_epoch * batch_size] for _ in range(-(-steps // per_epoch))]
    return np.concatenate(epochs).reshape(-1, batch_size)[:steps].astype("int32")


# ----------------------------------------------------------------------------- run
def run(
    estimator="disarm",
    model_type="linear",
    steps=20000,
    batch_size=50,
    samples=2,
    dataset="mnist",
    data=None,
    eval_every=1000,
    eval_samples=100,
    encoder_learning_rate=1e-4,
    decoder_learning_rate=1e-4,
    prior_learning_rate=1e-2,
    seed=0,
    output="outputs/bernoulli_vae",
    chunk_size=100,
    verbose=True,
):
    """Trains one model; returns a dict of results, also written to `<output>/<estimator>_<model>.json`."""
    say = print if verbose else (lambda *args, **kwargs: None)
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"Invalid value received for argument `estimator`. Expected one of {ESTIMATORS}. "
            f"Received: estimator={estimator!r}"
        )
    if estimator == "vimco" and samples < 2:
        raise ValueError(f"Invalid value received for argument `samples`. Expected >= 2 for vimco. Received: {samples}")
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    train, test, source = load_images(dataset, data)
    say(f"data: {source}; {len(train)} train / {len(test)} test images of {train.shape[1]} pixels")
    train_binary = binarize_once(train, seed=seed + 2)
    test_binary = binarize_once(test, seed=seed + 1)
    curve_images = train_binary[: min(2000, len(train_binary))]
    model = BernoulliVAE(train.mean(0), model_type)
    control = RelaxControlVariate(train.shape[1]) if estimator == "relax" else None
    optimizers = {
        "encoder": keras.optimizers.Adam(encoder_learning_rate),
        "decoder": keras.optimizers.Adam(decoder_learning_rate),
        "prior": keras.optimizers.SGD(prior_learning_rate),
    }
    parts = dict(model.parts)
    if control is not None:
        optimizers["control"] = keras.optimizers.Adam(encoder_learning_rate, beta_1=0.999)
        parts["control"] = control.variables
    for name, optimizer in optimizers.items():
        optimizer.build(parts[name])
    step = make_step(model, estimator, optimizers, samples=samples, control=control)
    chunk = make_chunk(step, tf.constant(train), seed)
    bound = make_bound(model)
    schedule = keras_gumbel.schedules.ExponentialDecay(initial=1.0, rate=3e-5, minimum=0.5, update_every=500)
    indices = batch_indices(len(train), batch_size, steps, seed)

    curve = {"step": [], "train_elbo_2000": [], "objective": [], "temperature": [], "seconds": []}
    train_seconds, train_cpu_seconds, done = 0.0, 0.0, 0
    while done < steps:
        size = min(chunk_size, steps - done, eval_every - done % eval_every)
        temperature = float(schedule.temperature_at(done, np)) if estimator in RELAXED else 1.0
        start, cpu_start = time.perf_counter(), time.process_time()
        objective = float(chunk(tf.constant(indices[done : done + size]), tf.constant(done), tf.constant(temperature)))
        train_seconds += time.perf_counter() - start
        train_cpu_seconds += time.process_time() - cpu_start
        done += size
        if done % eval_every == 0 or done == steps:
            _, elbo, _ = evaluate(bound, curve_images, 1, seed=11)
            for key, value in zip(curve, (done, elbo, objective, temperature, train_seconds)):
                curve[key].append(round(value, 3))
            extra = ""
            if control is not None:
                relax_temperature = math.exp(float(control.log_temperature))
                extra = f", RELAX temperature {relax_temperature:.3f} scale {float(control.scale):.3f}"
            say(f"step {done}: train ELBO (2,000 images, 1 sample) {elbo:.2f}, {train_seconds:.0f} s{extra}")

    start = time.perf_counter()
    _, train_elbo, train_error = evaluate(bound, train_binary, 1, seed=13)
    test_bound, test_elbo, test_error = evaluate(bound, test_binary, eval_samples, seed=17)
    eval_seconds = time.perf_counter() - start
    result = {
        "estimator": estimator,
        "model": model_type,
        "dataset": source,
        "steps": steps,
        "batch_size": batch_size,
        "samples": samples if estimator == "vimco" else None,
        "evaluations_per_step": evaluations_per_step(estimator, samples),
        "learning_rates": {
            "encoder": encoder_learning_rate,
            "decoder": decoder_learning_rate,
            "prior": prior_learning_rate,
        },
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "train_elbo": round(train_elbo, 2),
        "train_elbo_standard_error": round(train_error, 2),
        "test_elbo": round(test_elbo, 2),
        "test_bound": round(test_bound, 2),
        "test_bound_standard_error": round(test_error, 2),
        "eval_samples": eval_samples,
        "seed": seed,
        "curve": curve,
    }
    if control is not None:
        result["relax_temperature"] = round(math.exp(float(control.log_temperature)), 4)
        result["relax_scale"] = round(float(control.scale), 4)
    (output / f"{estimator}_{model_type}.json").write_text(json.dumps(result, indent=1))
    say(
        f"\n{estimator}: train ELBO {train_elbo:.2f} test ELBO {test_elbo:.2f} "
        f"(test {eval_samples}-sample bound {test_bound:.2f}), {model_type} model, "
        f"{steps} steps in {train_seconds / 60:.1f} min"
    )
    return result


# ----------------------------------------------------------------------------- comparison
def compare(directory, figure=None):
    """Prints a Markdown table of the runs in `directory` and, with `figure`, draws their curves."""
    runs = [json.loads(path.read_text()) for path in sorted(pathlib.Path(directory).glob("*.json"))]
    runs.sort(key=lambda run: (run["model"], ESTIMATORS.index(run["estimator"])))
    samples = ", ".join(str(count) for count in sorted({run["eval_samples"] for run in runs}))
    columns = [
        "model",
        "estimator",
        "f per step",
        "steps",
        "train ELBO",
        "test ELBO",
        f"test bound ({samples} samples)",
    ]
    print("| " + " | ".join([*columns, "train min: wall (CPU)"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in runs:
        print(
            f"| {run['model']} | {run['estimator']} | {run['evaluations_per_step']} | {run['steps']} | "
            f"{run['train_elbo']:.2f} | {run['test_elbo']:.2f} | {run['test_bound']:.2f} | "
            f"{run['train_seconds'] / 60:.1f} ({run.get('train_cpu_seconds', float('nan')) / 60:.1f}) |"
        )
    if figure is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({run["model"] for run in runs})
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2), squeeze=False)
    for axis, model in zip(axes[0], models):
        for run in (run for run in runs if run["model"] == model):
            axis.plot(run["curve"]["step"], run["curve"]["train_elbo_2000"], label=run["estimator"])
        axis.set_xlabel("training step (batch 50)")
        axis.set_ylabel("train ELBO (nats, 2,000 images, 1 sample)")
        axis.set_title(f"Bernoulli VAE, {model}, dynamically binarized MNIST")
        low = max(min(min(run["curve"]["train_elbo_2000"]) for run in runs if run["model"] == model), -400)
        axis.set_ylim(low, None)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    pathlib.Path(figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=90)
    plt.close(fig)
    print(f"figure: {figure}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--estimator", nargs="+", choices=(*ESTIMATORS, "all"), default=["disarm"], help="one or more, or all"
    )
    parser.add_argument("--model", choices=("linear", "nonlinear"), default="linear")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--samples", type=int, default=2, help="VIMCO's K (samples per image, evaluations of f)")
    parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist")
    parser.add_argument("--data", help="an .npz with x_train and x_test (Keras' layout)")
    parser.add_argument("--eval-every", type=int, default=1000, help="steps between points of the curve")
    parser.add_argument("--eval-samples", type=int, default=100, help="samples of the test bound")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="outputs/bernoulli_vae")
    parser.add_argument("--compare", metavar="DIR", help="print the table of the runs in DIR instead of training")
    parser.add_argument("--figure", help="with --compare: where to draw the curves")
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.compare, args.figure)
        return
    names = ESTIMATORS if "all" in args.estimator else args.estimator
    for estimator in names:
        run(
            estimator=estimator,
            model_type=args.model,
            steps=args.steps,
            batch_size=args.batch_size,
            samples=args.samples,
            dataset=args.dataset,
            data=args.data,
            eval_every=args.eval_every,
            eval_samples=args.eval_samples,
            seed=args.seed,
            output=args.output,
        )


if __name__ == "__main__":
    main()
