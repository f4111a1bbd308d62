"""Convert the QueryOpt authors' checkpoint to mmqueryopt's key names.

    python tools/convert_official_ckpt.py SRC.pth DST.pth

SRC is read with ``weights_only=True`` (tensors and plain data; the
authors' usual file, a state dict beside a pickled ``argparse.Namespace`` of
their options, is allowed), so a crafted file runs no code. A whole-model
pickle needs ``--unsafe-pickle`` and the authors' code on ``PYTHONPATH``.

The authors' model (DETR-style: ``backbone.0.body`` is a torchvision
ResNet-50, ``backbone.0.deconv`` / ``conv_layer3`` the top-down fusion,
``backbone.1`` the position tables, ``transformer`` the encoder and decoder)
maps one to one onto ``HashRetriever``'s backbone, neck and head. Their
database codes live outside the model and are not converted: evaluate the
converted weights with ``tools/test.py --database encoded``, or train on.
"""
import argparse
import io
import re
from collections import OrderedDict
from typing import Mapping, Union

import torch
from torch import nn

from mmqueryopt.engine.checkpoint_io import (CheckpointFileError,
                                             load_checkpoint_file)
from mmqueryopt.fileio import atomic_write

# (pattern on the authors' key, replacement); the first match wins.
KEY_RULES = [
    (r'^backbone\.0\.body\.', 'backbone.'),
    (r'^backbone\.0\.conv_layer3\.', 'neck.lateral.'),
    (r'^backbone\.0\.deconv\.', 'neck.top_down.'),
    (r'^backbone\.1\.(row|col)_embed\.', r'neck.\1_embed.'),
    (r'^input_proj_list\.', 'neck.input_projs.'),
    (r'^transformer\.encoder\.layers\.(\d+)\.linear(\d)\.',
     r'neck.encoder_layers.\1.ffn.linear\2.'),
    (r'^transformer\.encoder\.layers\.', 'neck.encoder_layers.'),
    (r'^transformer\.decoder\.layers\.0\.multihead_attn\.',
     'head.decoder_layer.cross_attn.'),
    (r'^transformer\.decoder\.layers\.0\.linear(\d)\.',
     r'head.decoder_layer.ffn.linear\1.'),
    # The authors' decoder keeps DETR's numbering with norm1 (the removed
    # self-attention's) missing: their norm2/norm3 are our norm1/norm2.
    (r'^transformer\.decoder\.layers\.0\.norm2\.', 'head.decoder_layer.norm1.'),
    (r'^transformer\.decoder\.layers\.0\.norm3\.', 'head.decoder_layer.norm2.'),
    (r'^transformer\.decoder\.norm\.', 'head.decoder_norm.'),
    (r'^query_embed\.', 'head.query_embed.'),
    (r'^hash_embed\.', 'head.bit_proj.'),
]


def convert_key(key: str) -> str:
    """Our name for one of the authors' keys; KeyError if none applies."""
    for pattern, replacement in KEY_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(f'no rule for the key {key!r}: is this a QueryOpt '
                   f'checkpoint of the authors?')


def convert_state_dict(
    state_dict: Union[Mapping[str, torch.Tensor], nn.Module]
) -> 'OrderedDict[str, torch.Tensor]':
    """Rename every key of the authors' state dict (values untouched).

    Args:
        state_dict (dict or nn.Module): The authors' state dict, optionally
            wrapped as ``{'model': ...}`` or ``{'state_dict': ...}``, keys
            optionally prefixed by ``module.`` (DataParallel); or their
            whole model (a whole-model pickle), or a dict wrapping it.

    Returns:
        OrderedDict: The state dict of :class:`HashRetriever`, database
        buffers excluded.

    Raises:
        TypeError: ``state_dict`` holds no state dict.
        KeyError: A key that no rule maps.
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
    converted = OrderedDict()
    for key, value in state_dict.items():
        converted[convert_key(key.removeprefix('module.'))] = value
    return converted


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
        state_dict = convert_state_dict(checkpoint)
    except (KeyError, TypeError) as err:
        raise SystemExit(f'error: {args.src!r}: {err.args[0]}') from None
    buffer = io.BytesIO()
    torch.save(
        dict(state_dict=state_dict, meta=dict(converted_from=args.src)),
        buffer)
    atomic_write(args.dst, buffer.getvalue())
    code_length = state_dict['head.query_embed.weight'].size(0)
    print(f'converted {len(state_dict)} tensors ({code_length}-bit) to '
          f'{args.dst}')


if __name__ == '__main__':
    main()
