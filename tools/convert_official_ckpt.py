"""Convert a reference implementation's checkpoint to mmqueryopt's keys.

    python tools/convert_official_ckpt.py SRC.pth DST.pth [--method M]

SRC is read with ``weights_only=True`` (tensors and plain data; the
authors' usual file, a state dict beside a pickled ``argparse.Namespace`` of
their options, is allowed), so a crafted file runs no code. A whole-model
pickle needs ``--unsafe-pickle`` and the authors' code on ``PYTHONPATH``.

The method is told by the keys, or by ``--method``; each method's key rules
live in ``mmqueryopt/converters/``. The A2-Net reference model always holds
A2-Net++'s image generators: ``--method a2net`` (what its keys tell) leaves
them out, and says so; ``--method a2netpp`` keeps them. Database codes live outside the
models and are not converted: evaluate the converted weights with
``tools/test.py --database encoded``, or train on.
"""
import argparse
import io
from collections import OrderedDict
from typing import Mapping, Optional, Union

import torch
from torch import nn

from mmqueryopt.converters import (METHODS, code_length, convert_keys,
                                   detect_method, left_out_keys)
from mmqueryopt.fileio import (CheckpointFileError, atomic_write,
                               load_checkpoint_file)

def convert_state_dict(
    state_dict: Union[Mapping[str, torch.Tensor], nn.Module],
    method: Optional[str] = None
) -> 'OrderedDict[str, torch.Tensor]':
    """Rename every key of the authors' state dict (values untouched),
    leaving out those the method's model has no place for.

    Args:
        state_dict (dict or nn.Module): The authors' state dict, optionally
            wrapped as ``{'model': ...}`` or ``{'state_dict': ...}``, keys
            optionally prefixed by ``module.`` (DataParallel); or their
            whole model (a whole-model pickle), or a dict wrapping it.
        method (str, optional): A key of ``mmqueryopt.converters.METHODS``;
            None tells it from the keys.

    Returns:
        OrderedDict: The state dict of :class:`HashRetriever`, database
        buffers excluded.

    Raises:
        TypeError: ``state_dict`` holds no state dict.
        KeyError: A key that no rule maps.
    """
    return convert_keys(unwrap_state_dict(state_dict), method)


def unwrap_state_dict(
    state_dict: Union[Mapping[str, torch.Tensor], nn.Module]
) -> Mapping[str, torch.Tensor]:
    """The state dict inside a checkpoint (see :func:`convert_state_dict`).

    Raises:
        TypeError: ``state_dict`` holds no state dict.
    """
    for wrapper in ('model', 'state_dict'):
        if isinstance(state_dict, Mapping) and isinstance(
                state_dict.get(wrapper), (Mapping, nn.Module)):
            state_dict = state_dict[wrapper]
    if isinstance(state_dict, nn.Module):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise TypeError(f'it holds a {type(state_dict).__name__}, not a '
                        f'state dict')
    return state_dict


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="the authors' checkpoint")
    parser.add_argument('dst', help='where to write the converted one')
    parser.add_argument(
        '--unsafe-pickle',
        action='store_true',
        help="read SRC with Python's full unpickler (torch.load "
        'weights_only=False). RISK: a crafted file runs any code it names, '
        'with your rights, while it loads. Only for a file from a source you '
        'trust, and only if the safe default refuses it (a whole-model '
        'pickle; it also needs the authors\' code importable)')
    parser.add_argument(
        '--method',
        choices=sorted(METHODS),
        help='the reference implementation SRC comes from; default: told '
        'by its keys')
    args = parser.parse_args(argv)
    try:
        # Their training script pickles its argparse options beside the
        # weights; a Namespace restores as attributes only, runs no code.
        checkpoint = load_checkpoint_file(
            args.src, unsafe_pickle=args.unsafe_pickle,
            extra_safe_globals=[argparse.Namespace])
    except CheckpointFileError as err:
        advice = ('. If the file comes from a source you trust, '
                  '--unsafe-pickle reads it' if err.reason == 'unsafe_pickle'
                  else '')
        raise SystemExit(f'error: {err}{advice}') from None
    try:
        reference = unwrap_state_dict(checkpoint)
        method = args.method or detect_method(reference)
        state_dict = convert_keys(reference, method)
    except (KeyError, TypeError) as err:
        raise SystemExit(f'error: {args.src!r}: {err.args[0]}') from None
    buffer = io.BytesIO()
    torch.save(
        dict(state_dict=state_dict, meta=dict(converted_from=args.src)),
        buffer)
    atomic_write(args.dst, buffer.getvalue())
    print(f'converted {len(state_dict)} tensors '
          f'({code_length(state_dict)}-bit, {method}) to {args.dst}')
    left_out = left_out_keys(reference, method)
    if left_out:
        print(f'left out {len(left_out)} tensors: '
              f'{METHODS[method].LEFT_OUT_REASON}')


if __name__ == '__main__':
    main()
