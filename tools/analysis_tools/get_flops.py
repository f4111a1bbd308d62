"""Parameters and multiply-accumulates of a hashing config's model.

    python tools/analysis_tools/get_flops.py CONFIG [--shape 224 224]

Counts the products only (convolutions, linears, matmuls, attention) as
multiply-accumulates, in eval mode (inference: the k original queries) and
in train mode (the auxiliary branches and other training-only blocks); how
and why: :mod:`mmqueryopt.analysis.complexity`. No pretrained weights are
loaded: the count does not depend on them. Every method at once, beside the
QueryOpt paper's Table 4: ``tools/analysis_tools/complexity_table.py``.
"""
import argparse

from mmqueryopt.analysis.complexity import complexity
from mmqueryopt.engine.cli import (add_cfg_options, exit_on_user_error,
                                   read_config)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224],
                        metavar=('H', 'W'), help='input size')
    add_cfg_options(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    with exit_on_user_error():
        cfg = read_config(args.config, args.cfg_options, args.allow_new_keys)
        result = complexity(cfg, args.shape)
    height, width = args.shape
    print(f'{args.config} at {height}x{width}, one image\n'
          f'parameters: {result["params"] / 1e6:.2f} M '
          f'({result["trainable_params"] / 1e6:.2f} M trainable)\n'
          f'inference (eval, k codes): {result["inference_macs"] / 1e9:.2f} '
          f'GMACs\n'
          f'training (train mode: auxiliary branches, training-only blocks): '
          f'{result["training_macs"] / 1e9:.2f} GMACs')


if __name__ == '__main__':
    main()
