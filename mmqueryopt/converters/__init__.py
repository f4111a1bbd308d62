"""Key rules that turn the reference implementations' state dicts into
``HashRetriever``'s, one module per method (``KEY_RULES``: (pattern,
replacement) pairs, the first match wins; ``SIGNATURE``: a pattern only that
method's keys match, or None for a method named only by ``--method``;
``CODE_LENGTH_KEY``: the converted parameter with one row per bit, or
``CODE_LENGTH_KEYS``: the parameters whose rows add up to the bits;
optionally ``LEFT_OUT``: a pattern of reference keys the method's model has
no place for, with ``LEFT_OUT_REASON``). Used by
``tools/convert_official_ckpt.py``."""
import re
from collections import OrderedDict
from typing import Iterable, List, Mapping, Optional

import torch

from mmqueryopt.fileio import strip_ddp_prefix
from mmqueryopt.registry import import_submodules

# Every module of this folder is one method's rules, named by the module
# (``--method NAME``): a new method's rules are a new file.
METHODS = import_submodules(__name__)


def detect_method(keys: Iterable[str]) -> str:
    """The method whose ``SIGNATURE`` one of ``keys`` matches.

    Raises:
        KeyError: None or several match.
    """
    keys = [strip_ddp_prefix(key) for key in keys]
    found = [
        name for name, rules in METHODS.items()
        if rules.SIGNATURE is not None and any(
            re.match(rules.SIGNATURE, key) for key in keys)
    ]
    if len(found) != 1:
        which = (f'several match ({", ".join(found)})' if found else
                 f'none of {", ".join(METHODS)} matches')
        raise KeyError(f'cannot tell the method from the keys (e.g. '
                       f'{keys[:3]}): {which}; name it with --method')
    return found[0]


def convert_key(key: str, method: str = 'queryopt') -> str:
    """Our name for one of the reference's keys; KeyError if none applies."""
    for pattern, replacement in _rules(method).KEY_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(f'no rule for the key {key!r}: is this a {method} '
                   f'checkpoint of the reference code?')


def left_out_keys(keys: Iterable[str], method: str) -> List[str]:
    """The reference keys that ``method``'s model has no place for (see the
    rules module's ``LEFT_OUT_REASON``), ``module.`` prefixes removed."""
    pattern = getattr(_rules(method), 'LEFT_OUT', None)
    keys = (strip_ddp_prefix(key) for key in keys)
    return [] if pattern is None else [k for k in keys if re.match(pattern, k)]


def convert_keys(state_dict: Mapping[str, torch.Tensor],
                 method: Optional[str] = None
                 ) -> 'OrderedDict[str, torch.Tensor]':
    """Rename every key (values untouched) but those the method's model has
    no place for (:func:`left_out_keys`); ``method`` None detects it."""
    keys = [strip_ddp_prefix(key) for key in state_dict]
    method = method or detect_method(keys)
    left_out = set(left_out_keys(keys, method))
    return OrderedDict(
        (convert_key(key, method), value)
        for key, value in zip(keys, state_dict.values())
        if key not in left_out)


def code_length(state_dict: Mapping[str, torch.Tensor]) -> int:
    """Bits of a converted state dict: the rows of the method's
    ``CODE_LENGTH_KEY``, or the summed rows of its ``CODE_LENGTH_KEYS``
    (a code split over several weights, e.g. SEMICON's global and part
    bits)."""
    for rules in METHODS.values():
        keys = getattr(rules, 'CODE_LENGTH_KEYS', (rules.CODE_LENGTH_KEY, ))
        if all(key in state_dict for key in keys):
            return sum(state_dict[key].size(0) for key in keys)
    raise KeyError('no known code-length key in the converted state dict')


def _rules(method: str):
    try:
        return METHODS[method]
    except KeyError:
        raise KeyError(f'unknown method {method!r}; known: '
                       f'{", ".join(METHODS)}') from None
