"""keras-gumbel demo: a categorical VAE with a discrete latent code, on data that needs no download.

Trains the categorical VAE of Jang et al. (2017) on scikit-learn's 8x8 digits
(binarized), once with the relaxed `GumbelSoftmax` layer and once with
`StraightThroughGumbel`, through `model.fit` with the temperature annealed by
`TemperatureAnnealing` (Jang et al.'s schedule, from 1.0 down to 0.5), then:

- prints the test negative ELBO of both (single-sample estimate, in nats),
- writes reconstructions and samples from the prior to `<output>/figures.png`,
- exports the straight-through model as a SavedModel to `<output>/saved_model`
  and checks that the served model gives the same deterministic output.

Usage:
    python examples/demo.py                     # about a minute on 2 CPU cores
    python examples/demo.py --epochs 2          # a smoke run
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402


def load_digits_binarized(seed=0):
    """scikit-learn's 8x8 digits scaled to [0, 1] and binarized once with a fixed seed."""
    from sklearn.datasets import load_digits

    images = load_digits().data.astype("float32") / 16.0
    rng = np.random.default_rng(seed)
    binary = (rng.uniform(size=images.shape) < images).astype("float32")
    order = rng.permutation(len(binary))
    split = int(0.8 * len(binary))
    return binary[order[:split]], binary[order[split:]]


class CategoricalVAE(keras.Model):
    """Encoder -> `num_latents` categorical variables of `num_classes` -> decoder.

    The loss is the negative ELBO with a Bernoulli likelihood and the exact KL
    divergence of q(z|x) to the uniform categorical prior.
    """

    def __init__(self, input_dim, sampler, num_latents=8, num_classes=10, hidden=256, **kwargs):
        super().__init__(**kwargs)
        self.num_latents, self.num_classes = num_latents, num_classes
        self.encoder = keras.Sequential(
            [
                keras.layers.Dense(hidden, activation="relu"),
                keras.layers.Dense(num_latents * num_classes),
                keras.layers.Reshape((num_latents, num_classes)),
            ],
            name="encoder",
        )
        self.sampler = sampler
        self.decoder = keras.Sequential(
            [keras.layers.Flatten(), keras.layers.Dense(hidden, activation="relu"), keras.layers.Dense(input_dim)],
            name="decoder",
        )

    def call(self, images, training=None):
        latent_logits = self.encoder(images)
        code = self.sampler(latent_logits, training=training)
        return {"reconstruction_logits": self.decoder(code), "latent_logits": latent_logits}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction = keras.ops.sum(
            keras.ops.binary_crossentropy(x, y_pred["reconstruction_logits"], from_logits=True), axis=-1
        )
        log_q = keras.ops.log_softmax(y_pred["latent_logits"], axis=-1)
        kl = keras.ops.sum(keras.ops.exp(log_q) * (log_q + np.log(self.num_classes)), axis=(1, 2))
        return keras.ops.mean(reconstruction + kl)


def negative_elbo(model, images, seed=0):
    """Single-sample test -ELBO in nats per image (the sampler draws, as in training)."""
    outputs = model(images, training=True)
    return float(keras.ops.convert_to_numpy(model.compute_loss(x=images, y_pred=outputs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--output", default="outputs/demo")
    args = parser.parse_args()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    train, test = load_digits_binarized()
    print(f"data: scikit-learn digits, {len(train)} train / {len(test)} test images of 8x8, binarized")

    models = {}
    for name, sampler in [
        ("gumbel_softmax", keras_gumbel.GumbelSoftmax(temperature=1.0, seed=1)),
        ("straight_through", keras_gumbel.StraightThroughGumbel(temperature=1.0, seed=1)),
    ]:
        print(f"\n== {name} ==")
        model = CategoricalVAE(train.shape[1], sampler)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        # max(0.5, exp(-7e-4 * step)), held for 100 steps at a time: reaches 0.5 near step 1000.
        schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=7e-4, minimum=0.5, update_every=100)
        history = model.fit(
            train, epochs=args.epochs, batch_size=64, verbose=2, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)]
        )
        print(f"temperature at the end: {history.history['temperature'][-1]:.3f}")
        models[name] = model

    print("\ntest negative ELBO (nats per image, one sample):")
    for name, model in models.items():
        print(f"  {name:<17} {negative_elbo(model, test):7.2f}")

    write_figures(models["straight_through"], test, output / "figures.png")
    export_path = output / "saved_model"
    model = models["straight_through"]
    model.export(str(export_path), verbose=False)
    import tensorflow as tf

    served_model = tf.saved_model.load(str(export_path))  # keep a reference: it owns the variables
    served = served_model.serve(test[:8])
    expected = keras.ops.convert_to_numpy(model(test[:8])["reconstruction_logits"])
    np.testing.assert_allclose(served["reconstruction_logits"].numpy(), expected, rtol=1e-5, atol=1e-5)
    print(f"\nwrote {output / 'figures.png'} and the SavedModel {export_path} (served output checked)")


def write_figures(model, test, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reconstructions = keras.ops.sigmoid(model(test[:10])["reconstruction_logits"])
    rng = np.random.default_rng(0)
    prior_codes = np.eye(model.num_classes, dtype="float32")[
        rng.integers(model.num_classes, size=(10, model.num_latents))
    ]
    samples = keras.ops.sigmoid(model.decoder(prior_codes))
    rows = [("test image", test[:10]), ("reconstruction", reconstructions), ("prior sample", samples)]
    figure, axes = plt.subplots(3, 10, figsize=(10, 3.4))
    for row, (title, images) in enumerate(rows):
        images = keras.ops.convert_to_numpy(images)
        for column in range(10):
            axes[row, column].imshow(images[column].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[row, column].axis("off")
        axes[row, 0].set_title(title, fontsize=8, loc="left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
