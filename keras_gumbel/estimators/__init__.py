"""Gradient estimators for expectations over samples whose reward has no gradient.

The interface and its plumbing:

- `registry`: `get("disarm")`, `serialize`, `deserialize`, `names()` and
  `register`, the one list of estimators by name, as `keras.optimizers.get`
  has for optimizers.
- `Estimator`: the interface the training helpers call; new estimators
  implement it. `Policy` (`policy`): the batch's distribution with its
  logits, kind of variable and action form, as the helpers hand it over.
- `baselines`: `leave_one_out_baseline` and the `Baseline` objects
  (`LeaveOneOut`, `MovingAverageBaseline`, `Learned`); `baselines.get` turns a
  `baseline=` argument into one.
- `training` and `reinforce_model`: `make_train_step` (custom loops) and
  `ReinforceModel` (`fit`), which train a policy with any estimator
  (TensorFlow backend).

The families, each a module registering its estimators, with pure functions
for custom losses:

- `pathwise`: `Pathwise`, the relaxed gradients (Gumbel-Softmax,
  straight-through, Gumbel-Rao, ReinMax) as estimators.
- `score_function`: `score_function_terms`, `score_function_loss` and
  `ScoreFunction`, the REINFORCE estimator with a baseline and an entropy
  bonus.
- `vimco`: `vimco_terms`, `vimco_loss` and `VIMCO`, the multi-sample bound
  with leave-one-out baselines (Mnih & Rezende, 2016).
- `enumeration`: `enumeration_loss`, `exact_expectation` and `Enumerate`,
  the expectation summed over a small support (zero variance).
- `unordered_set`: `unordered_set_terms`, `unordered_set_loss`,
  `sample_without_replacement` and `UnorderedSet`, k samples without
  replacement with a built-in baseline (Kool, van Hoof & Welling, 2020).
- `arm` and `arsm`: ARM and DisARM (binary, antithetic pairs) and ARSM
  (categorical, swapped Dirichlet draws).
- `relax`: REBAR and RELAX, the score function with a control variate from
  the Concrete relaxation at a conditional draw, trained to lower the
  variance (TensorFlow).
- `indecater`: IndeCateR, each variable's categories summed exactly, the
  others sampled (De Smet et al., 2023).

The pure functions run on every backend (keras.ops only); the training
helpers and REBAR/RELAX need TensorFlow. Every public module of this package
is imported here, so a new estimator module registers its estimators (and
re-exports its `__all__`) without an edit to this file.
"""

# isort: skip_file
# The estimator families first, in the order they register: the registry's order (`names()`), which the
# diagnostics and the benchmarks list, is this one. A module this list leaves out registers after them.
from keras_gumbel.estimators import pathwise
from keras_gumbel.estimators import score_function
from keras_gumbel.estimators import vimco
from keras_gumbel.estimators import enumeration
from keras_gumbel.estimators import unordered_set
from keras_gumbel.estimators import arsm
from keras_gumbel.estimators import arm
from keras_gumbel.estimators import relax

import importlib
import pkgutil

from keras_gumbel.estimators import baselines
from keras_gumbel.estimators import policy
from keras_gumbel.estimators import registry
from keras_gumbel.estimators import reinforce_model
from keras_gumbel.estimators import training
from keras_gumbel.estimators.arm import ARM
from keras_gumbel.estimators.arsm import ARSM
from keras_gumbel.estimators.arm import DisARM
from keras_gumbel.estimators.arm import antithetic_bernoulli
from keras_gumbel.estimators.arm import arm_gradient
from keras_gumbel.estimators.arm import arm_loss
from keras_gumbel.estimators.arsm import arsm_actions
from keras_gumbel.estimators.arsm import arsm_gradient
from keras_gumbel.estimators.arsm import arsm_loss
from keras_gumbel.estimators.arm import disarm_gradient
from keras_gumbel.estimators.arm import disarm_loss
from keras_gumbel.estimators.baselines import Baseline
from keras_gumbel.estimators.baselines import Learned
from keras_gumbel.estimators.baselines import LeaveOneOut
from keras_gumbel.estimators.baselines import MovingAverageBaseline
from keras_gumbel.estimators.baselines import leave_one_out_baseline
from keras_gumbel.estimators.enumeration import Enumerate
from keras_gumbel.estimators.enumeration import enumeration_loss
from keras_gumbel.estimators.enumeration import exact_expectation
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.pathwise import Pathwise
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import deserialize
from keras_gumbel.estimators.registry import get
from keras_gumbel.estimators.registry import names
from keras_gumbel.estimators.registry import register
from keras_gumbel.estimators.registry import serialize
from keras_gumbel.estimators.relax import REBAR
from keras_gumbel.estimators.relax import RELAX
from keras_gumbel.estimators.relax import conditional_relaxation
from keras_gumbel.estimators.relax import relax_gradient
from keras_gumbel.estimators.relax import relax_loss
from keras_gumbel.estimators.relax import relax_variance
from keras_gumbel.estimators.score_function import ScoreFunction
from keras_gumbel.estimators.score_function import score_function_loss
from keras_gumbel.estimators.score_function import score_function_terms
from keras_gumbel.estimators.reinforce_model import ReinforceModel
from keras_gumbel.estimators.training import make_train_step
from keras_gumbel.estimators.unordered_set import UnorderedSet
from keras_gumbel.estimators.unordered_set import sample_without_replacement
from keras_gumbel.estimators.unordered_set import unordered_set_loss
from keras_gumbel.estimators.unordered_set import unordered_set_terms
from keras_gumbel.estimators.vimco import VIMCO
from keras_gumbel.estimators.vimco import vimco_loss
from keras_gumbel.estimators.vimco import vimco_terms

__all__ = [
    "ARM",
    "ARSM",
    "Baseline",
    "DisARM",
    "Enumerate",
    "Estimator",
    "LeaveOneOut",
    "Learned",
    "MovingAverageBaseline",
    "Pathwise",
    "Policy",
    "REBAR",
    "RELAX",
    "ReinforceModel",
    "ScoreFunction",
    "UnorderedSet",
    "VIMCO",
    "antithetic_bernoulli",
    "arm",
    "arm_gradient",
    "arm_loss",
    "arsm",
    "arsm_actions",
    "arsm_gradient",
    "arsm_loss",
    "baselines",
    "conditional_relaxation",
    "deserialize",
    "disarm_gradient",
    "disarm_loss",
    "enumeration",
    "enumeration_loss",
    "exact_expectation",
    "get",
    "leave_one_out_baseline",
    "make_train_step",
    "names",
    "pathwise",
    "policy",
    "register",
    "registry",
    "reinforce_model",
    "relax",
    "relax_gradient",
    "relax_loss",
    "relax_variance",
    "sample_without_replacement",
    "serialize",
    "score_function",
    "score_function_loss",
    "score_function_terms",
    "training",
    "unordered_set",
    "unordered_set_loss",
    "unordered_set_terms",
    "vimco",
    "vimco_loss",
    "vimco_terms",
]


# The modules `_import_the_other_modules` found: the API docs render each (tools/mkdocs_hooks.py).
DISCOVERED_MODULES = []


def _import_the_other_modules():
    """Imports each public module not imported above (a new estimator family), re-exporting its `__all__`."""
    namespace = globals()
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        name = module_info.name
        if name.startswith("_") or name in namespace:
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        namespace[name] = module
        DISCOVERED_MODULES.append(name)
        __all__.append(name)
        for public in getattr(module, "__all__", ()):
            namespace[public] = getattr(module, public)
            __all__.append(public)


_import_the_other_modules()
