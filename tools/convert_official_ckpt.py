"""Convert the QueryOpt authors' checkpoint to mmqueryopt's key names.

    python tools/convert_official_ckpt.py SRC.pth DST.pth

The authors' model (DETR-style: ``backbone.0.body`` is a torchvision
ResNet-50, ``backbone.0.deconv`` / ``conv_layer3`` the top-down fusion,
``backbone.1`` the position tables, ``transformer`` the encoder and decoder)
maps one to one onto ``HashRetriever``'s backbone, neck and head. Their
database codes live outside the model and are not converted: evaluate the
converted weights with ``tools/test.py --database encoded``, or train on.
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict

import torch

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
        state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename every key of the authors' state dict (values untouched).

    Args:
        state_dict (dict): The authors' state dict, optionally wrapped as
            ``{'model': ...}`` or ``{'state_dict': ...}``, keys optionally
            prefixed by ``module.`` (DataParallel).

    Returns:
        OrderedDict: The state dict of :class:`HashRetriever`, database
        buffers excluded.
    """
    for wrapper in ('model', 'state_dict'):
        if isinstance(state_dict.get(wrapper), dict):
            state_dict = state_dict[wrapper]
    converted = OrderedDict()
    for key, value in state_dict.items():
        converted[convert_key(key.removeprefix('module.'))] = value
    return converted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="the authors' checkpoint")
    parser.add_argument('dst', help='where to write the converted one')
    args = parser.parse_args()
    # The authors' files may hold pickled argparse namespaces, so allow the
    # full unpickler only for a file the user chose to convert.
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    state_dict = convert_state_dict(checkpoint)
    torch.save(
        dict(state_dict=state_dict, meta=dict(converted_from=args.src)),
        args.dst)
    code_length = state_dict['head.query_embed.weight'].size(0)
    print(f'converted {len(state_dict)} tensors ({code_length}-bit) to '
          f'{args.dst}')


if __name__ == '__main__':
    main()
