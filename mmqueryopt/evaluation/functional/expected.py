r"""Exact expectations over uniformly random orders inside distance ties.

A tie bucket holds ``n`` items, ``r`` of them relevant, ranked behind ``N``
items of which ``R`` are relevant. Shuffle it uniformly. By linearity, the
expected sum of precisions at its relevant ranks is ``r`` times the expected
precision of one given relevant item. That item lands on bucket position ``p``
with probability ``1/n``; given ``p``, the other ``r - 1`` relevant items fill
``r - 1`` of the other ``n - 1`` slots uniformly, so on average
``(p - 1)(r - 1)/(n - 1)`` of them precede it, and its rank ``N + p`` is fixed:

.. math::

    S = \frac{r}{n} \sum_{p=1}^{n}
        \frac{R + 1 + (p - 1)\frac{r - 1}{n - 1}}{N + p}
      = \frac{r}{n}\Big[(R + 1)\,\Delta H
        + \frac{r - 1}{n - 1}\big(n - (N + 1)\,\Delta H\big)\Big],

with :math:`\Delta H = H_{N+n} - H_N` (harmonic numbers) and the second term
dropped when ``n = 1``.

For AP@k only the first ``m = k - N`` positions of the bucket that straddles
the cutoff are retrieved, and AP@k divides by the number of relevant items
retrieved, which is then random. Conditioning on that number ``x``
(hypergeometric: ``m`` draws from ``n`` items of which ``r`` relevant), the
``x`` relevant items are uniform over the ``m`` retrieved slots, so the same
``S`` applies with ``(n, r) -> (m, x)``; the exact expectation is the
pmf-weighted sum over ``x`` of ``(S_before + S(m, x)) / (R + x)``.

A query's value does not depend on the other queries of its chunk, to the
last bit on a CPU: everything is elementwise +, -, *, / (no ``exp`` or
``lgamma``, whose vectorised and scalar kernels round differently), lookups
in tables built once for the whole database, and sums over a row taken left
to right (:func:`row_sums`), so the zeros a chunk pads its tables with change
nothing.
"""
from typing import Dict, NamedTuple, Sequence

import torch


class CutoffExpectation(NamedTuple):
    """Per-query expectations at one cutoff, each ``(q,)`` float64."""
    average_precision: torch.Tensor
    relevant_retrieved: torch.Tensor
    no_relevant_probability: torch.Tensor


def harmonic_numbers(n: int, device: torch.device) -> torch.Tensor:
    """``(n + 1,)`` float64 ``H_0 = 0, H_i = 1 + 1/2 + ... + 1/i``."""
    inverses = 1 / torch.arange(1, n + 1, dtype=torch.float64, device=device)
    return torch.cat([inverses.new_zeros(1), inverses.cumsum(0)])


def expected_precision_sum(size: torch.Tensor, relevant: torch.Tensor,
                           before: torch.Tensor, relevant_before: torch.Tensor,
                           harmonic: torch.Tensor) -> torch.Tensor:
    """Expected sum of precisions at the relevant ranks of a shuffled bucket.

    All arguments broadcast together; counts are int64 tensors.

    Args:
        size (torch.Tensor): Items in the bucket (``n``).
        relevant (torch.Tensor): Relevant items in the bucket (``r``).
        before (torch.Tensor): Items ranked before the bucket (``N``).
        relevant_before (torch.Tensor): Relevant items among them (``R``).
        harmonic (torch.Tensor): :func:`harmonic_numbers` up to at least
            ``max(N + n)``.

    Returns:
        torch.Tensor: float64 ``S`` of the module docstring, 0 for empty
        buckets.
    """
    n, r = size.double(), relevant.double()
    delta_h = harmonic[before + size] - harmonic[before]
    spread = torch.where(size > 1, (r - 1) / (n - 1).clamp(min=1), 0.)
    per_item = ((relevant_before + 1) * delta_h + spread *
                (n - (before + 1) * delta_h))
    return torch.where(size > 0, r / n.clamp(min=1) * per_item, 0.)


def row_sums(values: torch.Tensor) -> torch.Tensor:
    """``(q,)`` sums of the rows of a ``(q, w)`` tensor, left to right.

    Chunking must not move a single bit of a query's value, but the width of
    a chunk's table (its padding with zeros) and its row count depend on the
    chunk. ``Tensor.sum`` vectorises in an order that changes with the row
    length and with the CPU's kernel set; torch's CPU ``cumsum`` is a plain
    running sum per row, in which trailing zeros change nothing.
    """
    return values.cumsum(1)[:, -1]


def hypergeometric_pmf(population: torch.Tensor, successes: torch.Tensor,
                       sample: torch.Tensor, num_draws: int) -> torch.Tensor:
    """P(``x`` successes) for ``x = 0..num_draws - 1``, drawing ``sample`` of
    ``population`` items without replacement, ``successes`` of them being
    successes.

    Built from the mode outwards with the ratios
    ``p(x + 1) / p(x) = (s - x)(m - x) / ((x + 1)(n - s - m + x + 1))`` (each
    a quotient of exact integers), running products and a running sum, then
    normalised. Only +, *, / and running scans: no transcendental function,
    whose vectorised and scalar CPU kernels may round the same argument
    differently depending on where it sits in a tensor. Partial products
    stay at most 1 (the pmf is unimodal), so nothing overflows; far tails
    underflow to 0.

    Args:
        population (torch.Tensor): ``(q,)`` int64 ``n``.
        successes (torch.Tensor): ``(q,)`` int64 ``s <= n``.
        sample (torch.Tensor): ``(q,)`` int64 ``m <= n``.
        num_draws (int): Columns; at least ``max(min(s, m)) + 1``.

    Returns:
        torch.Tensor: ``(q, num_draws)`` float64 pmf, 0 outside the support.
    """
    n, s, m = (t[:, None] for t in (population, successes, sample))
    x = torch.arange(num_draws, device=population.device)
    lowest = (m - (n - s)).clamp(min=0)
    highest = torch.minimum(s, m)
    mode = (m + 1) * (s + 1) // (n + 2)
    rise = ((s - x) * (m - x)).double()
    fall = ((x + 1) * (n - s - m + x + 1)).double()
    # Outside their masks the quotients may be 0/0 or x/0; where drops them.
    above = torch.where((x >= mode) & (x < highest), rise / fall, 1.)
    below = torch.where((x >= lowest) & (x < mode), fall / rise, 1.)
    # p(x) / p(mode): products of the ratios between x and the mode.
    from_mode = torch.cat([above.new_ones(len(above), 1),
                           above.cumprod(1)[:, :-1]], 1)
    to_mode = below.flip(1).cumprod(1).flip(1)
    weight = torch.where((x >= lowest) & (x <= highest), from_mode * to_mode,
                         0.)
    return weight / row_sums(weight)[:, None]


def expected_at_cutoffs(
        items: torch.Tensor, relevant: torch.Tensor, cutoffs: Sequence[int],
        harmonic: torch.Tensor) -> Dict[int, CutoffExpectation]:
    """Expected AP@k (divided by relevant items retrieved), hits and P(none).

    Args:
        items (torch.Tensor): ``(q, nbits + 1)`` items at each distance.
        relevant (torch.Tensor): ``(q, nbits + 1)`` relevant items at each.
        cutoffs (Sequence[int]): Values of ``k``, at most the database size.
        harmonic (torch.Tensor): :func:`harmonic_numbers` up to ``D``.

    Returns:
        dict[int, CutoffExpectation]: Per-query expected AP@k, expected
        number of relevant items in the top k and probability that there is
        none, for each cutoff.
    """
    before = items.cumsum(1) - items
    relevant_before = relevant.cumsum(1) - relevant
    # Whole buckets' sums do not depend on the cutoff.
    bucket_sum = expected_precision_sum(items, relevant, before,
                                        relevant_before, harmonic)
    return {
        cutoff: _at_cutoff(items, relevant, before, bucket_sum, cutoff,
                           harmonic)
        for cutoff in cutoffs
    }


def _at_cutoff(items, relevant, before, bucket_sum, cutoff,
               harmonic) -> CutoffExpectation:
    inside = before + items <= cutoff
    full_sum = row_sums(torch.where(inside, bucket_sum, 0.))
    full_relevant = (relevant * inside).sum(1)

    straddles = (before < cutoff) & ~inside  # at most one bucket per query
    size, relevant_in, before_it = ((t * straddles).sum(1)
                                    for t in (items, relevant, before))
    taken = torch.where(straddles.any(1), cutoff - before_it, 0)
    max_draws = int(torch.minimum(relevant_in, taken).max())
    draws = torch.arange(max_draws + 1, device=items.device)
    pmf = hypergeometric_pmf(size, relevant_in, taken, max_draws + 1)
    partial_sum = expected_precision_sum(taken[:, None], draws,
                                         before_it[:, None],
                                         full_relevant[:, None], harmonic)
    hits = full_relevant[:, None] + draws
    # With no hit both sums are 0, so clamping the divisor gives AP 0.
    average_precision = row_sums(pmf * (full_sum[:, None] + partial_sum) /
                                 hits.clamp(min=1))
    relevant_retrieved = (
        full_relevant + taken * relevant_in / size.clamp(min=1).double())
    no_relevant = torch.where(full_relevant == 0, pmf[:, 0], 0.)
    return CutoffExpectation(average_precision, relevant_retrieved,
                             no_relevant)
