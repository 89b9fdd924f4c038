"""The kernels of the permutation ops: log-space Sinkhorn normalisation and the exact maximum-weight assignment.

Private: `keras_gumbel.ops` holds the public functions (`sinkhorn`,
`gumbel_sinkhorn`, `max_weight_assignment`), which check their arguments and
call these; `GumbelSinkhorn` calls `permutation` directly. Written with
`keras.ops` only (`keras.ops.while_loop` for the assignment), so everything
here runs in a `tf.function`, under XLA, in a SavedModel and on every backend.

- `check_square`: `log_alpha` as the kernels take it ([..., N, N], N known).
- `log_sinkhorn`: alternating row and column `logsumexp` normalisation.
- `assignment`: the Hungarian algorithm, batched, in-graph.
- `permutation_matrix`: the exact 0/1 matrix of an assignment, from selects.
- `permutation`: what the ops and the layer compute (arguments checked).
"""

import math

from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation


def check_square(log_alpha, name="log_alpha"):
    """`log_alpha` as a tensor in its compute dtype, with its dtype; a ValueError unless it is [..., N, N], N >= 1."""
    log_alpha, _, out_dtype = _sampling.prepare(log_alpha)
    shape = tuple(log_alpha.shape)
    if len(shape) < 2:
        raise ValueError(
            _validation.invalid(name, "a tensor of rank >= 2 holding square matrices [..., N, N]", f"<shape {shape}>")
        )
    rows, columns = shape[-2:]
    if rows is None or columns is None:
        raise ValueError(
            _validation.invalid(
                name,
                "matrices of a known size N (in a tf.function, give its input_signature a shape such as [None, N, N])",
                f"<shape {shape}>",
            )
        )
    if rows != columns or rows == 0:
        raise ValueError(_validation.invalid(name, "square matrices [..., N, N] with N >= 1", f"<shape {shape}>"))
    return log_alpha, out_dtype


def log_sinkhorn(scaled, num_iterations):
    """`num_iterations` rounds of row then column normalisation in log space (Mena et al., 2018, eq. 1).

    After each round the columns of `exp(result)` sum to 1 (up to rounding)
    and the rows approach 1. Every round subtracts a term per row and one per
    column, so `result = scaled + a_i + b_j`: the maximum-weight assignment of
    `result` is that of `scaled`, at every iteration. A `-inf` entry stays
    `-inf` (zero mass) and gets a zero gradient.
    """

    def normalise(scaled):
        scaled = ops.subtract(scaled, ops.logsumexp(scaled, axis=-1, keepdims=True))
        return ops.subtract(scaled, ops.logsumexp(scaled, axis=-2, keepdims=True))

    return _backend.repeat(normalise, scaled, num_iterations)


def assignment(weights):
    """The maximum-weight assignment of each square matrix [..., N, N]: int32 [..., N], row i to column result[i].

    The Hungarian algorithm with potentials and shortest augmenting paths
    (Kuhn 1955; Munkres 1957; in the O(N^3) form of Jonker & Volgenant), run
    on every matrix of the batch in lockstep with `keras.ops.while_loop`: one
    row is added per outer step, and each inner step scans all N columns
    at once. The result is always a permutation. It is the optimum exactly
    for every matrix whose weights are finite or `-inf` and which has a
    permutation of finite weight (the search never needs a `-inf` entry);
    the caller flags the others (`permutation_matrix`). Potentials are kept
    in the weights' dtype, so two assignments whose total weights differ by
    less than its rounding (about 1e-7 relative in float32) are a tie.
    """
    size = weights.shape[-1]
    result_shape = ops.shape(weights)[:-1]
    weights = ops.reshape(weights, (-1, size, size))
    dtype = weights.dtype
    infinity = ops.cast(math.inf, dtype)
    # Costs to minimise, >= 0: the row maximum (over finite entries) minus the weight; -inf weights cost +inf.
    # Invalid entries (NaN, +inf) make the whole matrix invalid: it is solved as zeros, and flagged by the caller.
    finite = ops.isfinite(weights)
    valid = ops.all(ops.logical_or(finite, ops.equal(weights, -math.inf)), axis=(-2, -1), keepdims=True)
    row_max = _backend.max(ops.where(finite, weights, ops.full_like(weights, -math.inf)), axis=-1, keepdims=True)
    row_max = ops.where(ops.isfinite(row_max), row_max, ops.zeros_like(row_max))
    cost = ops.where(finite, ops.subtract(row_max, weights), ops.full_like(weights, math.inf))
    cost = ops.where(valid, cost, ops.zeros_like(cost))
    # Row and column 0 are the algorithm's dummies (1-based indices below): cost[:, 0, :] is never read.
    cost = ops.pad(cost, ((0, 0), (1, 0), (1, 0)))
    width = size + 1
    columns = ops.arange(width, dtype="int32")
    num_matrices = ops.shape(cost)[0]
    zeros_int = ops.zeros((num_matrices, width), dtype="int32")
    zeros_float = ops.zeros((num_matrices, width), dtype=dtype)

    def pick(values, index):
        """values[b, index[b]] for every matrix b."""
        return ops.take_along_axis(values, ops.expand_dims(index, -1), axis=1)[:, 0]

    def add_row(row, potential_rows, potential_columns, matched_row, way):
        # matched_row[j]: the row (1-based; 0 = none) holding column j. Column 0 holds the row being added.
        matched_row = ops.where(ops.equal(columns, 0), row, matched_row)

        def searching_any(state):
            return ops.any(state[-1])

        def search(state):
            column, used, visited, min_reduced, way, potential_rows, potential_columns, searching = state
            used_now = ops.logical_or(used, ops.equal(columns, ops.expand_dims(column, -1)))
            current_row = pick(matched_row, column)
            visited_now = ops.logical_or(visited, ops.equal(columns, ops.expand_dims(current_row, -1)))
            row_costs = ops.take_along_axis(cost, ops.reshape(current_row, (-1, 1, 1)), axis=1)[:, 0, :]
            reduced = ops.subtract(
                ops.subtract(row_costs, ops.expand_dims(pick(potential_rows, current_row), -1)), potential_columns
            )
            # (An unreached column, at infinite cost, still records the way it was last seen from, so that
            # a matrix with no finite assignment still ends with a permutation.)
            improves = ops.logical_and(
                ops.logical_not(used_now),
                ops.logical_or(ops.less(reduced, min_reduced), ops.equal(min_reduced, infinity)),
            )
            min_reduced_now = ops.where(improves, reduced, min_reduced)
            way_now = ops.where(improves, ops.expand_dims(column, -1), way)
            candidates = ops.where(used_now, infinity, min_reduced_now)
            delta = ops.min(candidates, axis=1, keepdims=True)
            # Infinite only when the visited rows reach no unused column at finite cost: no finite assignment
            # exists (flagged by the caller). Then any unused column is taken, with a zero step that keeps the
            # potentials finite: each step still uses a new column, so the search ends within N steps.
            reachable = ops.isfinite(delta)
            best = ops.logical_and(
                ops.logical_not(used_now),
                ops.logical_or(ops.equal(candidates, delta), ops.logical_not(reachable)),
            )
            next_column = ops.cast(_backend.argmax(ops.cast(best, "int32"), 1), "int32")
            delta = ops.where(reachable, delta, ops.zeros_like(delta))
            potential_rows_now = ops.where(visited_now, ops.add(potential_rows, delta), potential_rows)
            potential_columns_now = ops.where(used_now, ops.subtract(potential_columns, delta), potential_columns)
            min_reduced_now = ops.where(used_now, min_reduced_now, ops.subtract(min_reduced_now, delta))
            # Matrices that reached a free column keep their state while the others search on.
            on = ops.expand_dims(searching, -1)
            return (
                ops.where(searching, next_column, column),
                ops.where(on, used_now, used),
                ops.where(on, visited_now, visited),
                ops.where(on, min_reduced_now, min_reduced),
                ops.where(on, way_now, way),
                ops.where(on, potential_rows_now, potential_rows),
                ops.where(on, potential_columns_now, potential_columns),
                ops.logical_and(searching, ops.not_equal(pick(matched_row, next_column), 0)),
            )

        state = (
            ops.zeros((num_matrices,), dtype="int32"),
            ops.zeros((num_matrices, width), dtype="bool"),
            ops.zeros((num_matrices, width), dtype="bool"),
            ops.add(zeros_float, infinity),
            way,
            potential_rows,
            potential_columns,
            ops.ones((num_matrices,), dtype="bool"),
        )
        column, _, _, _, way, potential_rows, potential_columns, _ = ops.while_loop(
            lambda *state: searching_any(state), lambda *state: search(state), state, maximum_iterations=size + 1
        )

        # Augment along the path back to the dummy column 0.
        def augment(column, matched_row):
            active = ops.not_equal(column, 0)
            previous = pick(way, column)
            at_column = ops.logical_and(ops.equal(columns, ops.expand_dims(column, -1)), ops.expand_dims(active, -1))
            matched_row = ops.where(at_column, ops.expand_dims(pick(matched_row, previous), -1), matched_row)
            return ops.where(active, previous, column), matched_row

        _, matched_row = ops.while_loop(
            lambda column, matched_row: ops.any(ops.not_equal(column, 0)),
            augment,
            (column, matched_row),
            maximum_iterations=size + 1,
        )
        return ops.add(row, 1), potential_rows, potential_columns, matched_row, way

    state = (ops.convert_to_tensor(1, dtype="int32"), zeros_float, zeros_float, zeros_int, zeros_int)
    _, _, _, matched_row, _ = ops.while_loop(lambda row, *_: ops.less_equal(row, size), add_row, state)
    # Column j (1-based) holds row matched_row[j]: invert to the column of each row.
    holds = ops.equal(ops.expand_dims(matched_row[:, 1:], -1), ops.arange(1, width, dtype="int32"))  # [b, j, i]
    result = ops.cast(_backend.argmax(ops.cast(holds, "int32"), axis=1), "int32")
    return ops.reshape(result, result_shape)


def permutation_matrix(weights):
    """The exact 0/1 matrix of the maximum-weight assignment of `weights` [..., N, N], in their dtype.

    Built from selects (`one_hot`): no arithmetic touches the 0s and 1s. A
    matrix with no permutation of finite weight (every permutation meets a
    `-inf`), or holding NaN or `+inf`, has no valid choice: it is all NaN.
    """
    size = weights.shape[-1]
    permutation = ops.one_hot(_backend.as_graph(assignment)(ops.stop_gradient(weights)), size, dtype=weights.dtype)
    chosen = ops.cast(permutation, "bool")
    invalid = ops.logical_not(ops.all(ops.isfinite(ops.where(chosen, weights, ops.zeros_like(weights))), axis=(-2, -1)))
    invalid = ops.logical_or(invalid, ops.any(ops.isnan(weights), axis=(-2, -1)))
    invalid = ops.logical_or(invalid, ops.any(ops.equal(weights, math.inf), axis=(-2, -1)))
    return ops.where(ops.expand_dims(ops.expand_dims(invalid, -1), -1), math.nan, permutation)


def permutation(log_alpha, temperature, num_iterations, hard, seed, add_noise):
    """The computation behind `sinkhorn`, `gumbel_sinkhorn` and `GumbelSinkhorn` (arguments checked).

    `(log_alpha + g) / temperature` (`g` Gumbel noise when `add_noise`, else
    0), normalised by `num_iterations` Sinkhorn rounds; with `hard`, the exact
    permutation matrix of the maximum-weight assignment of `log_alpha + g`
    forward (the temperature does not change it) and the Sinkhorn matrix's
    gradient backward.
    """
    log_alpha, out_dtype = check_square(log_alpha)
    inverse_temperature = _sampling.inverse_temperature(temperature, log_alpha.dtype)
    if add_noise:
        log_alpha = _sampling.perturb(log_alpha, seed)
    relaxed = ops.exp(log_sinkhorn(ops.multiply(log_alpha, inverse_temperature), num_iterations))
    if hard:
        relaxed = _sampling.with_gradient_of(permutation_matrix(log_alpha), relaxed)
    return ops.cast(relaxed, out_dtype)
