"""Our models in MMPretrain's model hub.

``mmpretrain.list_models(task='Image Retrieval')``, ``mmpretrain.get_model``
and ``ImageRetrievalInferencer`` find a model by its name in the hub, which
reads ``model-index.yml`` files. Ours sits at the repository root and imports
each method folder's ``configs/<method>/metafile.yml``; the configs it names
are found under the same root.

The root is the folder above the package, where an editable install
(``pip install -e .``, the only install this project documents) leaves the
package beside ``configs/`` and ``model-index.yml``. An install without the
repository has no configs to name: then nothing is registered and MMEngine's
logger says so at debug level; importing the package still works.
"""
import functools
import logging
import os.path as osp
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def model_index_file() -> Optional[str]:
    """The root ``model-index.yml``, or None when it is not beside the
    package."""
    path = osp.join(REPO_ROOT, 'model-index.yml')
    return path if osp.isfile(path) else None


def _models() -> list:
    """The ``modelindex`` models of ``model-index.yml`` (empty without it)."""
    from modelindex.load_model_index import load

    path = model_index_file()
    if path is None:
        return []
    index = load(path)
    index.build_models_with_collections()
    return list(index.models)


def registered_names() -> List[str]:
    """Lower-cased names of the models that ``model-index.yml`` lists (the
    hub's keys), in file order; empty without the file."""
    return [model.name.lower() for model in _models()]


@functools.lru_cache(maxsize=None)
def paper_maps() -> Dict[str, float]:
    """The papers' mAP (%) that the metafiles quote (metric ``Paper mAP``).

    Returns:
        dict: ``{config name: mAP}``, the config's file name without
        ``.py`` (e.g. ``'queryopt_cub_12bit'``), for the models that have
        one; empty without ``model-index.yml``.
    """
    found = {}
    for model in _models():
        for result in model.results or []:
            if 'Paper mAP' in (result.metrics or {}):
                name = osp.splitext(osp.basename(model.config))[0]
                found[name] = float(result.metrics['Paper mAP'])
    return found


def register_model_index() -> bool:
    """Register the models of ``model-index.yml`` in MMPretrain's hub.

    Config paths in the metafiles are relative to the repository root.
    Registering again (the package imported anew) changes nothing: MMPretrain
    refuses a name twice.

    Returns:
        bool: Whether the models are in the hub (False: no ``model-index.yml``
        beside the package).
    """
    from mmengine.logging import print_log
    from mmpretrain.apis import ModelHub

    path = model_index_file()
    if path is None:
        print_log(
            f'mmqueryopt: no model-index.yml in {REPO_ROOT} (not an editable '
            'install of the repository): its models are not registered '
            "with MMPretrain's get_model / list_models",
            logger='current', level=logging.DEBUG)
        return False
    names = registered_names()
    if not all(ModelHub.has(name) for name in names):
        ModelHub.register_model_index(path, config_prefix=REPO_ROOT)
    return True
