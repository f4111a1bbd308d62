"""Export scikit-learn's bundled handwritten digits in the CUB-200-2011 layout.

The 1,797 real 8x8 scans (10 classes) ship inside scikit-learn, so the main
job trains on real images with no download. Fixed split: image i (in
scikit-learn's order) is a query ("test") when i % 5 == 0, else it is in the
database ("train"): 360 queries, 1,437 database images, every class in both.

    python tools/export_digits.py data/digits [--size 32]
"""
import argparse
import os
import os.path as osp
import shutil
import tempfile

import numpy as np
from PIL import Image


def export_digits(out_dir: str, size: int = 32) -> int:
    """Write images/, images.txt, image_class_labels.txt, classes.txt and
    train_test_split.txt under ``out_dir``; returns the number of images.

    The folder appears whole or not at all (written next to it, then
    renamed), so an interrupted export leaves nothing half-written.
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.digits-', dir=parent)
    try:
        _write_tree(staging, digits.images, digits.target, size)
        if osp.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(digits.target)


def _write_tree(root: str, images: np.ndarray, labels: np.ndarray,
                size: int) -> None:
    lines = {'images.txt': [], 'image_class_labels.txt': [],
             'train_test_split.txt': []}
    for label in range(10):
        os.makedirs(osp.join(root, 'images', f'{label + 1:03d}.digit_{label}'))
    for i, (image, label) in enumerate(zip(images, labels)):
        image_id = i + 1
        rel_path = f'{label + 1:03d}.digit_{label}/digit_{i:04d}.png'
        # Scans hold 17 grey levels (0..16), ink high; bilinear upsampling
        # gives the network a few pixels per stroke.
        grey = Image.fromarray((image * (255 / 16)).astype(np.uint8))
        grey.resize((size, size), Image.BILINEAR).convert('RGB').save(
            osp.join(root, 'images', rel_path))
        lines['images.txt'].append(f'{image_id} {rel_path}')
        lines['image_class_labels.txt'].append(f'{image_id} {label + 1}')
        lines['train_test_split.txt'].append(
            f'{image_id} {0 if i % 5 == 0 else 1}')
    lines['classes.txt'] = [
        f'{label + 1} {label + 1:03d}.digit_{label}' for label in range(10)
    ]
    for name, content in lines.items():
        with open(osp.join(root, name), 'w') as f:
            f.write('\n'.join(content) + '\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder to create, e.g. data/digits')
    parser.add_argument(
        '--size', type=int, default=32, help='side of the exported images')
    args = parser.parse_args()
    count = export_digits(args.out_dir, args.size)
    print(f'wrote {count} digits ({args.size}x{args.size}) to {args.out_dir}')


if __name__ == '__main__':
    main()
