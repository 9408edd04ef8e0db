"""Sum of one weight row per latent group, with a backward that avoids embedding_bag's sort.

A model state's stoch part is G one-hot groups of K classes. Multiplying the one-hot [N, G*K] by a
weight [G*K, out] is the same as summing the G weight rows the class indices pick. The forward is
F.embedding_bag; its stock backward sorts all N*G indices first (with the sort, 9% of a compiled
DreamerV3 xs update on a CPU). Scattering the gradient rows one group column at a time with
index_add_, in chunks of rows, is about 3x faster (79 -> 24 ms for 16k rows x 32 groups x 256
outputs, 1 thread).

A custom op, so torch.compile calls these kernels instead of lowering them into its own loops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CHUNK_ROWS = 1024  # 16k rows x 32 groups x 256: 39 ms unchunked, 24 ms in chunks of 1024 rows (1 thread)


@torch.library.custom_op("dreamlab::row_sum", mutates_args=())
def row_sum(index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """index [N, G] (long, rows of weight), weight [R, out] -> [N, out]: sum over G of weight[index]."""
    return F.embedding_bag(index, weight, mode="sum")


@row_sum.register_fake
def _row_sum_shape(index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return weight.new_empty(index.shape[0], weight.shape[1])


@torch.library.custom_op("dreamlab::row_sum_backward", mutates_args=())
def row_sum_backward(index: torch.Tensor, grad: torch.Tensor, rows: int) -> torch.Tensor:
    """The weight gradient [rows, out] of row_sum for the output gradient grad [N, out]."""
    weight_grad = grad.new_zeros(rows, grad.shape[1])
    # on a CPU a chunk of grad stays in cache across the G columns; on a GPU: G launches, no chunks
    chunk_rows = _CHUNK_ROWS if grad.device.type == "cpu" else max(len(grad), 1)
    for start in range(0, len(grad), chunk_rows):
        chunk = grad[start:start + chunk_rows]
        for column in index[start:start + chunk_rows].unbind(1):
            weight_grad.index_add_(0, column, chunk)
    return weight_grad


@row_sum_backward.register_fake
def _row_sum_backward_shape(index: torch.Tensor, grad: torch.Tensor, rows: int) -> torch.Tensor:
    return grad.new_empty(rows, grad.shape[1])


def _setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # noqa: ANN001
    index, weight = inputs
    ctx.save_for_backward(index)
    ctx.rows = weight.shape[0]


def _backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # noqa: ANN001
    (index,) = ctx.saved_tensors
    return None, row_sum_backward(index, grad.contiguous(), ctx.rows)


row_sum.register_autograd(_backward, setup_context=_setup_context)
