"""Seen/unseen class splits: which classes a run holds out of training.

DSH_Analysis (aassxun/DSH_Analysis) trains every method on the *seen*
classes and also evaluates on the held-out *unseen* ones. Its rule, in
``set_flag.py`` and the ``data/*zs.py`` loaders: a fraction of the classes
(5, 15 or 25 %) is unseen, and the unseen classes are the last ones of the
dataset's label order. Its counts are ``floor(ratio * classes)`` (CUB
10/30/50, Aircraft and Food-101 5/15/25, NABirds 27/83/138), except
VegFru, whose loader takes two thirds of the unseen classes from the end of
the vegetables and one third from the end of the fruits and so needs a
multiple of three (15/45/75). :func:`class_split` covers both with *groups*:
consecutive label ranges that each give up a fixed share of the unseen
classes from their end.
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from .errors import DatasetError

#: (classes in the group, its share of the unseen classes) per group.
Groups = Sequence[Tuple[int, int]]


class ClassSplitError(DatasetError):
    """An ``unseen_ratio`` or ``subset`` that leaves a split empty."""


@dataclass(frozen=True)
class ClassSplit:
    """The classes of a seen/unseen split.

    Attributes:
        order (tuple[int]): The original labels in split order: the seen
            classes first, then the unseen ones. A sample's label in the
            split is the position of its original label here, so that seen
            labels are ``0..num_seen-1`` and unseen ones
            ``num_seen..num_classes-1``.
        num_seen (int): Classes the model trains on.
        num_unseen (int): Classes held out of training.
    """
    order: Tuple[int, ...]
    num_seen: int
    num_unseen: int

    @property
    def is_identity(self) -> bool:
        """bool: Labels keep their values (every dataset but a grouped
        one, e.g. VegFru, at a ratio above 0)."""
        return self.order == tuple(range(len(self.order)))

    @property
    def new_label(self) -> Dict[int, int]:
        """dict[int, int]: Original label -> label in the split."""
        return {old: new for new, old in enumerate(self.order)}

    @property
    def unseen_labels(self) -> Tuple[int, ...]:
        """tuple[int]: The original labels of the unseen classes."""
        return self.order[self.num_seen:]


def num_unseen_classes(num_classes: int, unseen_ratio: float,
                       shares: int = 1) -> int:
    """DSH's count of unseen classes.

    ``floor(unseen_ratio * num_classes)``, rounded up to a multiple of
    ``shares`` when the groups split it in fixed shares (VegFru: 2 + 1).

    Args:
        num_classes (int): Classes of the dataset.
        unseen_ratio (float): The fraction to hold out, in [0, 1).
        shares (int): The sum of the groups' shares. Defaults to 1.

    Returns:
        int: The number of unseen classes.
    """
    # The epsilon keeps 0.15 * 200 = 30.000000000000004 and 0.07 * 100 =
    # 7.000000000000001 where they belong, and 0.29 * 100 from falling to 28.
    floor = math.floor(unseen_ratio * num_classes + 1e-9)
    return math.ceil(floor / shares) * shares


def class_split(num_classes: int, unseen_ratio: float,
                groups: Optional[Groups] = None) -> ClassSplit:
    """The seen and unseen classes of a dataset at ``unseen_ratio``.

    Args:
        num_classes (int): Classes of the dataset (labels ``0..C-1``).
        unseen_ratio (float): The fraction of classes to hold out, in
            [0, 1); 0 holds out nothing and keeps every label.
        groups (Sequence[tuple[int, int]], optional): Consecutive label
            ranges ``(size, share)`` that each give up ``share / sum of
            shares`` of the unseen classes from their end; the sizes add up
            to ``num_classes``. None: one group, the last classes are
            unseen.

    Returns:
        ClassSplit: The split order and the class counts.

    Raises:
        ClassSplitError: The ratio holds out no class or every class
            (``error.key`` is ``'unseen_ratio'``).
    """
    groups = tuple(groups) if groups else ((num_classes, 1), )
    if sum(size for size, _ in groups) != num_classes:
        raise ValueError(f'class groups {groups} do not add up to '
                         f'{num_classes} classes')
    shares = sum(share for _, share in groups)
    num_unseen = num_unseen_classes(num_classes, unseen_ratio, shares)
    rule = (f'floor({unseen_ratio} x {num_classes} classes)'
            + (f' rounded up to a multiple of {shares}' if shares > 1 else ''))
    if unseen_ratio > 0 and num_unseen == 0:
        raise _error(f'unseen_ratio={unseen_ratio} holds out no class: '
                     f'{rule} = 0; expected a ratio that holds out at '
                     f'least one class (>= {shares / num_classes:.3g})')
    if num_unseen >= num_classes or any(
            num_unseen * share // shares >= size for size, share in groups):
        raise _error(f'unseen_ratio={unseen_ratio} holds out {num_unseen} '
                     f'of {num_classes} classes ({rule}), which leaves no '
                     f'seen class to train on; expected a ratio in [0, 1) '
                     f'that keeps at least one seen class'
                     + (' in each class group' if len(groups) > 1 else ''))
    seen, unseen, start = [], [], 0
    for size, share in groups:
        held_out = num_unseen * share // shares
        seen.extend(range(start, start + size - held_out))
        unseen.extend(range(start + size - held_out, start + size))
        start += size
    return ClassSplit(tuple(seen + unseen), len(seen), len(unseen))


def check_unseen_ratio(unseen_ratio) -> None:
    """Refuse an ``unseen_ratio`` that is not a number in [0, 1).

    Raises:
        ClassSplitError: One line naming ``unseen_ratio``.
    """
    if isinstance(unseen_ratio, bool) or not isinstance(
            unseen_ratio, (int, float)) or not 0 <= unseen_ratio < 1:
        raise _error(f'unseen_ratio must be a fraction of the classes in '
                     f'[0, 1) (DSH: 0.05, 0.15 or 0.25), got '
                     f'{unseen_ratio!r}')


def _error(problem: str, key: str = 'unseen_ratio') -> ClassSplitError:
    error = ClassSplitError(problem)
    error.key = key
    return error
