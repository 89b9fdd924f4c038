"""The registry of estimators: names for `get`, and Keras serialization, like `keras.optimizers.get`.

Every estimator class registers itself where it is defined, with
`@register("name")` (once per name it is known by; a name may fix some of
its arguments, as `"reinforce_leave_one_out"` is `ScoreFunction(baseline=
"leave_one_out")`). Registering also makes the class a Keras serializable
(`package="keras_gumbel"`), so a model holding an estimator saves it in its
`.keras` file. The registry is the one list of estimators: `names()` gives
it in registration order, and the diagnostics, the estimator-quality
benchmark, the estimator cases of the execution-mode matrix and the API docs
read it.

Examples:
    >>> import keras_gumbel
    >>> estimator = keras_gumbel.estimators.get("disarm")
    >>> type(estimator).__name__
    'DisARM'
    >>> config = keras_gumbel.estimators.serialize(
    ...     keras_gumbel.estimators.get("reinforce_leave_one_out")
    ... )
    >>> restored = keras_gumbel.estimators.deserialize(config)
    >>> restored.baseline.get_config()
    {}
"""

import inspect

import keras

from keras_gumbel import _validation

__all__ = ["deserialize", "get", "names", "register", "serialize"]


class Configurable:
    """What estimators and baselines share with Keras objects: `get_config` and `from_config`.

    `get_config` returns the constructor's arguments (none by default), so
    that `from_config(get_config())` makes an equal object.
    """

    def get_config(self):
        """The constructor's arguments: `from_config(get_config())` makes an equal object.

        The default is `{}`, for a constructor without arguments; a subclass
        whose constructor takes some must return them, or saving refuses it
        (rather than reload it with its defaults).
        """
        parameters = [
            name
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
        if parameters:
            raise NotImplementedError(
                f"{type(self).__name__} takes the arguments {parameters} but does not implement `get_config`: "
                "return them from `get_config` (e.g. {'beta': self.beta}) so that a saved model makes it anew with "
                "the same ones."
            )
        return {}

    @classmethod
    def from_config(cls, config):
        """The object of a `get_config` dict."""
        return cls(**config)


# name -> (class, the arguments the name fixes), in registration order.
_REGISTRY = {}


def register(name, **arguments):
    """A class decorator: registers an `Estimator` class under `name` (with `arguments` fixed) and with Keras.

    Args:
        name: The name `get` knows it by: lower case, words joined by `_`.
        **arguments: Constructor arguments the name fixes (e.g.
            `baseline="leave_one_out"`).

    Raises:
        ValueError: If `name` is already registered to another class or
            other arguments.
    """
    if not isinstance(name, str) or not name or name != name.lower() or " " in name:
        raise ValueError(_validation.invalid("name", "a lower-case name without spaces, e.g. 'disarm'", name))

    def decorate(cls):
        from keras_gumbel.estimators.estimator import Estimator

        if not (isinstance(cls, type) and issubclass(cls, Estimator)):
            raise TypeError(_validation.invalid("cls", "a subclass of keras_gumbel.estimators.Estimator", cls))
        entry = (cls, dict(arguments))
        # Re-registering the same class (a module reloaded) replaces its entry; another class may not take the name.
        known = _REGISTRY.get(name)
        if known is not None and (known[0].__qualname__, known[0].__module__) != (cls.__qualname__, cls.__module__):
            raise ValueError(f"The estimator name {name!r} is already registered to {known[0].__name__}.")
        # With Keras too, unless the class is registered already, under its own package's name (a user's class
        # called ScoreFunction must not take keras_gumbel>ScoreFunction); then in the registry, so that a refusal
        # leaves no name behind.
        if keras.saving.get_registered_name(cls) == cls.__name__:
            keras.saving.register_keras_serializable(package=cls.__module__.split(".")[0])(cls)
        _REGISTRY[name] = entry
        return cls

    return decorate


def names():
    """The registered estimator names, in registration order."""
    return tuple(_REGISTRY)


def entry(name):
    """`(class, fixed_arguments)` of a registered name; a `ValueError` naming the known ones otherwise."""
    if name not in _REGISTRY:
        raise ValueError(_validation.invalid("estimator", f"one of the registered names {names()}", name))
    cls, arguments = _REGISTRY[name]
    return cls, dict(arguments)


def get(identifier, **arguments):
    """An `Estimator` from a name, a serialized config, or an estimator (returned as is).

    Args:
        identifier: A registered name (`names()`), a dict from `serialize`,
            or an `Estimator`.
        **arguments: Further constructor arguments for a name (e.g.
            `get("relax", hidden_units=64)`); not with a dict or an object.

    Raises:
        ValueError: For an unknown name, or arguments the name fixes itself.
        TypeError: For anything else.
    """
    from keras_gumbel.estimators.estimator import Estimator

    if isinstance(identifier, Estimator):
        if arguments:
            raise ValueError(f"Arguments {sorted(arguments)} are for a name; received the estimator {identifier!r}.")
        return identifier
    if isinstance(identifier, dict):
        if arguments:
            raise ValueError(f"Arguments {sorted(arguments)} are for a name; received a config {identifier!r}.")
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls, fixed = entry(identifier)
        clash = sorted(set(fixed) & set(arguments))
        if clash:
            raise ValueError(f"The estimator name {identifier!r} fixes {clash} itself; received {arguments!r}.")
        # object's own __init__ reads (*args, **kwargs) but takes nothing.
        accepted = {} if cls.__init__ is object.__init__ else inspect.signature(cls.__init__).parameters
        takes_any = any(parameter.kind == parameter.VAR_KEYWORD for parameter in accepted.values())
        unknown = [] if takes_any else sorted(set(arguments) - set(accepted))
        if unknown:
            raise TypeError(
                f"The estimator {identifier!r} ({cls.__name__}) takes no argument {unknown}; it takes "
                f"{[name for name in accepted if name not in ('self', *fixed)]}. Received: {arguments!r}"
            )
        return cls(**fixed, **arguments)
    raise TypeError(
        _validation.invalid("estimator", "a registered name, a serialized config or an Estimator", identifier)
    )


def serialize(estimator):
    """The estimator's config as Keras serializes objects (`keras.saving.serialize_keras_object`)."""
    return keras.saving.serialize_keras_object(estimator)


def deserialize(config, custom_objects=None):
    """The estimator a `serialize` config describes (`keras.saving.deserialize_keras_object`)."""
    from keras_gumbel.estimators.estimator import Estimator

    estimator = keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
    if not isinstance(estimator, Estimator):
        raise TypeError(_validation.invalid("config", "the config of an Estimator", config))
    return estimator
