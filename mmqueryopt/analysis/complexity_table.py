"""Every method's size and cost beside the QueryOpt paper's Table 4.

One config a method, ``configs/<method>/<method>_cub_<k>bit.py`` (CUB's 200
classes where the classes enter the model: FISH, DAHNet, QueryOpt†), at the
code length k whose parameter count is the paper's where Table 4 lists the
method, 12 bits elsewhere; counted by :func:`.complexity.complexity` at the
paper's 224 x 224 input. ``tools/analysis_tools/complexity_table.py`` writes
the rows as Markdown, JSON and CSV.
"""
import csv
import glob
import io
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

from .complexity import complexity

# The QueryOpt paper's Table 4 (parameters in M; FLOPs in G, counted with
# thop, which also counts normalisations and activations), and the code
# length each row was counted at: ExchNet's 40.43 M is its 48-bit count
# (40.436 M) and SEMICON's 42.42 M its 24-bit one (42.418 M); AGMH's 35.56 M
# and QueryOpt's 31.71 M (trainable: its stem and layer1 are frozen) are
# 12-bit counts (baselines, AGMH and QueryOpt facts files).
PAPER_TABLE4 = {
    'exchnet': dict(bits=48, params_m=40.43, training_g=7.67,
                    inference_g=7.67),
    'semicon': dict(bits=24, params_m=42.42, training_g=7.09,
                    inference_g=7.09),
    'agmh': dict(bits=12, params_m=35.56, training_g=8.61, inference_g=8.61),
    'queryopt': dict(bits=12, params_m=31.71, training_g=5.27,
                     inference_g=5.23),
}
# Training work outside the model's forward, which the count (one forward
# in train mode) leaves out.
TRAINING_NOTES = {
    'fish': 'FISH trains on a second forward of each image with its peaks '
    'erased (its loss calls the network again): twice the training MACs.',
    'exchnet': 'ExchNet also encodes the training set once a round from '
    'round 35 for its anchors.',
}
DEFAULT_BITS = 12
INPUT_SHAPE = (224, 224)
COLUMNS = ('method', 'name', 'config', 'bits', 'params', 'trainable_params',
           'training_macs', 'inference_macs', 'paper_params_m',
           'paper_training_g', 'paper_inference_g', 'note')


def toolbox_methods(repo: str) -> List[str]:
    """The method folders under ``<repo>/configs`` (all but ``_base_``)."""
    return sorted(
        osp.basename(osp.dirname(path))
        for path in glob.glob(osp.join(repo, 'configs', '*', 'metafile.yml')))


def method_config(repo: str, method: str) -> str:
    """The config a method is counted with (relative to ``repo``)."""
    bits = PAPER_TABLE4.get(method, {}).get('bits', DEFAULT_BITS)
    return osp.join('configs', method, f'{method}_cub_{bits}bit.py')


def method_name(repo: str, method: str) -> str:
    """The method's name as its metafile's collection gives it."""
    import yaml
    with open(osp.join(repo, 'configs', method, 'metafile.yml')) as f:
        return yaml.safe_load(f)['Collections'][0]['Name']


def complexity_rows(repo: str,
                    methods: Optional[Sequence[str]] = None) -> List[Dict]:
    """Count each method's model.

    Args:
        repo (str): The repository root (``configs/`` under it).
        methods (Sequence[str], optional): Method folders to count; None:
            all of :func:`toolbox_methods`.

    Returns:
        list[dict]: One row a method with the keys of ``COLUMNS``: counts
        (parameters, MACs for one image), the paper's Table 4 figures
        (None where the paper has no row) and a note on training work the
        count leaves out (or None).
    """
    rows = []
    for method in methods or toolbox_methods(repo):
        config = method_config(repo, method)
        cfg = Config.fromfile(osp.join(repo, config))
        counted = complexity(cfg, INPUT_SHAPE)
        paper = PAPER_TABLE4.get(method, {})
        rows.append(dict(
            method=method, name=method_name(repo, method), config=config,
            bits=cfg.model.head.code_length, **counted,
            paper_params_m=paper.get('params_m'),
            paper_training_g=paper.get('training_g'),
            paper_inference_g=paper.get('inference_g'),
            note=TRAINING_NOTES.get(method)))
    return rows


def _num(value: Optional[float], scale: float = 1.0) -> str:
    return '–' if value is None else f'{value / scale:.2f}'


def to_markdown(rows: Sequence[Dict]) -> str:
    """The rows as Table 4's layout, ours beside the paper's, and the
    rows' notes under the table."""
    lines = [
        '| Method | Bits | Params (M) | Trainable (M) | Paper params (M) | '
        'Training GMACs | Paper training (G) | Inference GMACs | '
        'Paper inference (G) | Config |',
        '| :--- | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | '
        ':--- |'
    ]
    for row in rows:
        lines.append(
            f'| {row["name"]} | {row["bits"]} | {_num(row["params"], 1e6)} '
            f'| {_num(row["trainable_params"], 1e6)} | '
            f'{_num(row["paper_params_m"])} | '
            f'{_num(row["training_macs"], 1e9)} | '
            f'{_num(row["paper_training_g"])} | '
            f'{_num(row["inference_macs"], 1e9)} | '
            f'{_num(row["paper_inference_g"])} | `{row["config"]}` |')
    notes = [row['note'] for row in rows if row['note']]
    return '\n'.join(lines + ([''] + notes if notes else [])) + '\n'


def to_csv(rows: Sequence[Dict]) -> str:
    """The rows as CSV, the counts unscaled (parameters, MACs)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ('' if row[key] is None else row[key])
                         for key in COLUMNS})
    return out.getvalue()
