"""The hashing model: backbone, neck, hash head, loss and database."""
import logging
import os.path as osp
from functools import partial
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmpretrain.models.retrievers import BaseRetriever
from mmpretrain.structures import DataSample
from torch import Tensor
from torch.utils.data import DataLoader

from mmqueryopt.compat import (ignore_in_ddp_broadcast,
                               route_local_checkpoint_loading)
from mmqueryopt.evaluation.functional.codes import pack_codes, sign
from mmqueryopt.fileio import (Codes, check_same_model, file_sha256,
                               load_codes, save_codes)
from mmqueryopt.registry import MODELS
from .databases.base import DatabaseView
from .prototype import (CHECKPOINT_FILE_KEY, check_prototype_images,
                        encode_prototype, hamming_scores,
                        load_from_local_noting_file)

# Where checkpoints written before the database slot kept ADSH's state.
_LEGACY_DATABASE_KEYS = {
    'database_codes': 'database.codes',
    'sampled_codes': 'database.sampled_codes',
    'database_labels': 'database.labels',
}


@MODELS.register_module()
class HashRetriever(BaseRetriever):
    """Image-to-code model: backbone, neck, hash head, loss and database.

    The database (``model.database``, a
    :class:`~mmqueryopt.models.databases.HashDatabase`) is the training
    strategy's state and the codes evaluation ranks against: ADSH's learned
    B (:class:`~mmqueryopt.models.databases.ADSHDatabase`, the default), or
    the network's own codes of the training images
    (:class:`~mmqueryopt.models.databases.EncodedDatabase`). In a training
    batch the retriever hands the database the relaxed codes and the loss
    the database's view of the batch (:meth:`loss`); the round hook tells
    the database when rounds start and end. DDP leaves the database's
    buffers alone (no buffer broadcast): they are rank-local until the
    database combines them.

    Args:
        backbone (dict): Any MMPretrain backbone returning at least two maps.
        neck (dict): E.g. ``SubtleFeatureNeck``. A neck class with a
            ``fit_to_backbone(cfg, backbone)`` classmethod completes its
            config from the built backbone first (e.g. the resolution ratio
            of the maps it fuses), so that a backbone swap is one key.
        head (dict): A :class:`~mmqueryopt.models.heads.BaseHashHead`, e.g.
            ``QueryHashHead``.
        loss (dict): ``ADSHLoss`` or a subclass: a function of the relaxed
            codes, the database's view and the head's further outputs.
            Defaults to ``ADSHLoss``.
        database (dict): The database strategy; built with ``code_width``
            = the head's ``relaxed_dims``. Defaults to ``ADSHDatabase``.
        frozen_modules (Sequence[str]): Submodules or parameters that get
            no gradient, e.g. ``('backbone.conv1', 'backbone.bn1',
            'backbone.layer1')`` or a ViT's ``'backbone.cls_token'``. Unlike
            a backbone's ``frozen_stages`` this leaves their BatchNorm in
            train mode, as the authors do. Names of which the model has
            none (those of another backbone, after a swap) are skipped with
            a warning; some present and some absent is an error (a typo).
        data_preprocessor (dict, optional): Defaults to MMPretrain's
            ``ClsDataPreprocessor``.
        prototype (DataLoader | dict | str | Tensor, optional): A gallery
            to rank against in :meth:`predict`, as MMPretrain's retrievers
            take it (see :attr:`prototype`). Training, validation and
            testing use none (the default): there ``predict`` returns the
            codes alone, which the metric ranks against the database.
        init_cfg (dict, optional): MMEngine init config.

    With a :attr:`prototype`, the model is what MMPretrain's
    ``ImageRetrievalInferencer`` needs (:meth:`prepare_prototype`,
    :meth:`dump_prototype` writing a codes file, :meth:`predict` scoring
    the whole gallery); see docs/inference.md.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 loss: dict = dict(type='ADSHLoss'),
                 database: dict = dict(type='ADSHDatabase'),
                 frozen_modules: Sequence[str] = (),
                 data_preprocessor: Optional[dict] = None,
                 prototype: Union[DataLoader, dict, str, Tensor,
                                  None] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        super().__init__(
            prototype=prototype,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        #: The checkpoint file the weights were last loaded from (see
        #: :meth:`codes_meta`); None for weights from anywhere else.
        self.checkpoint_file: Optional[str] = None
        # The prepared gallery's image paths and class ids.
        self._prototype_items = None
        # mmpretrain.get_model loads the checkpoint right after building
        # the model, through MMEngine's local loader: MMEngine 0.10.7's own
        # fails on its checkpoints under torch >= 2.6 and does not say
        # which file the weights came from (compat says more).
        route_local_checkpoint_loading(load_from_local_noting_file)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(_fit_to_backbone(neck, self.backbone))
        self.head = MODELS.build(head)
        self.loss_module = MODELS.build(loss)
        self.database = MODELS.build(
            database, default_args=dict(code_width=self.head.relaxed_dims))
        _freeze(self, frozen_modules)
        # Each rank writes only its own rows of the database's state (U); a
        # DDP wrapper that broadcasts buffers (torch's default) would
        # overwrite them with rank 0's copy at every forward. The database
        # synchronises them itself at the end of a round.
        ignore_in_ddp_broadcast(
            self, [f'database.{name}'
                   for name, _ in self.database.named_buffers()])

    @property
    def code_length(self) -> int:
        return self.head.code_length

    @property
    def prototype(self):
        """The gallery :meth:`predict` ranks against, or None.

        One of: a ``DataLoader`` of the gallery images (data samples with
        ``sample_idx`` and ``img_path``); a dict, the config of such a
        dataloader; a str, a codes file of this model
        (:meth:`dump_prototype`, ``tools/encode.py``); a (N, code_length)
        Tensor of codes (signs taken, ties to +1). Setting it drops the
        prepared codes: the next :meth:`predict` prepares the new gallery.
        """
        return self._prototype

    @prototype.setter
    def prototype(self, value) -> None:
        if value is not None and not isinstance(
                value, (DataLoader, dict, str, Tensor)):
            raise TypeError(
                f'prototype must be a DataLoader, a dataloader config '
                f'(dict), a codes file (str) or a Tensor of codes; got '
                f'{type(value).__name__}')
        self._prototype = value
        self.prototype_inited = False

    def codes_meta(self) -> dict:
        """The meta of codes this model encodes, as a codes file records
        it and :func:`~mmqueryopt.fileio.check_same_model` compares it.

        Returns:
            dict: ``method``, ``nbits`` and ``weights_sha256`` (of
            :attr:`checkpoint_file`; None when the weights came from no
            file), the keys of
            :func:`mmqueryopt.retrieval.model_meta`.
        """
        return dict(
            method=f'{type(self).__name__}/{type(self.head).__name__}',
            nbits=int(self.code_length),
            weights_sha256=(None if self.checkpoint_file is None else
                            file_sha256(self.checkpoint_file)))

    def prepare_prototype(self) -> None:
        """Encode (or read) the gallery of :attr:`prototype` into the
        non-persistent buffer ``prototype_codes``: (N, code_length) ±1,
        row ``i`` the gallery item of ``sample_idx`` ``i``.

        Raises:
            ValueError: No prototype is set; an empty gallery; a codes
                file of another model or code length, or one this model
                cannot be checked against (weights from no checkpoint).
            FileNotFoundError, BrokenImageError: A gallery image is missing
                or undecodable (named), found before any encoding.
            CodesFileError: The codes file is not one.
        """
        prototype = self.prototype
        items = None
        if prototype is None:
            raise ValueError('the model has no prototype: set '
                             'model.prototype to a gallery first')
        if isinstance(prototype, Tensor):
            if prototype.dim() != 2 or prototype.size(1) != self.code_length:
                raise ValueError(
                    f'a prototype Tensor must be (N, {self.code_length}) '
                    f'codes; got shape {tuple(prototype.shape)}')
            codes = binarize(prototype)
        elif isinstance(prototype, str):
            codes, items = self._read_prototype_file(prototype)
        else:
            if isinstance(prototype, dict):
                from mmengine.runner import Runner
                prototype = Runner.build_dataloader(prototype)
            check_prototype_images(prototype.dataset)
            was_training = self.training
            self.eval()
            try:
                codes, paths, labels = encode_prototype(self, prototype)
            finally:
                self.train(was_training)
            items = (paths, labels)
        device = next(self.parameters()).device
        self.register_buffer(
            'prototype_codes', codes.to(device, torch.float32),
            persistent=False)
        self._prototype_items = items
        self.prototype_inited = True

    def _read_prototype_file(self, path: str):
        """The codes and items of a codes file, refused if another model
        (or code length, or checkpoint) encoded it."""
        codes = load_codes(path)
        if self.checkpoint_file is None:
            raise ValueError(
                f'cannot check the prototype codes file {path!r} against '
                f'this model: its weights were not loaded from a checkpoint '
                f'file (pass pretrained=<checkpoint>)')
        check_same_model(codes.meta, self.codes_meta(), repr(path))
        labels = codes.labels
        items = (list(map(str, codes.paths)),
                 None if labels is None or labels.ndim != 1 else
                 [int(label) for label in labels])
        return torch.from_numpy(codes.signs()), items

    def dump_prototype(self, path: str) -> None:
        """Write the prepared gallery as a codes file (atomically, on the
        main process), readable by ``tools/search.py``,
        :meth:`BinaryIndex.load <mmqueryopt.retrieval.BinaryIndex.load>` and
        a later ``prototype=path``.

        The file records :meth:`codes_meta` (the model, the code length and
        the checkpoint's sha256), each code's image path and, when every
        item has one, its class id.

        Args:
            path (str): The ``.npz`` file.

        Raises:
            ValueError: The gallery was a Tensor (no image paths), or the
                weights came from no checkpoint file (the file could not
                say which weights encoded it).
        """
        if not self.prototype_inited:
            self.prepare_prototype()
        if self._prototype_items is None or None in self._prototype_items[0]:
            raise ValueError(
                f'cannot write the prototype codes file {path!r}: a codes '
                f'file needs the image path of each code, which a Tensor '
                f'prototype (or samples without img_path) lacks')
        if self.checkpoint_file is None:
            raise ValueError(
                f'cannot write the prototype codes file {path!r}: the '
                f"model's weights were not loaded from a checkpoint file, so "
                f'the file could not record which weights encoded it')
        if not is_main_process():
            return
        paths, labels = self._prototype_items
        packed, nbits = pack_codes(self.prototype_codes.cpu(), 'prototype')
        meta = self.codes_meta()
        config = getattr(getattr(self, '_config', None), 'filename', None)
        if config:
            meta['config'] = osp.splitext(osp.basename(config))[0]
        save_codes(
            path,
            Codes(packed, nbits, np.asarray(paths, dtype=str),
                  None if None in labels else np.asarray(labels), meta))

    def matching(self, query_codes: Tensor) -> Tensor:
        """Scores of every gallery item for each query (see
        :func:`~mmqueryopt.models.prototype.hamming_scores`).

        Args:
            query_codes (Tensor): (B, code_length) in {-1, +1}.

        Returns:
            Tensor: (B, N) float64, decreasing in (Hamming distance, gallery
            index); the distance is ``code_length - ceil(score)``.
        """
        if not self.prototype_inited:
            self.prepare_prototype()
        return hamming_scores(query_codes, self.prototype_codes)

    def init_weights(self) -> None:
        """Initialise, turning a missing pretrained file into advice."""
        try:
            super().init_weights()
        except OSError as err:  # URLError and FileNotFoundError included
            raise OSError(_pretrained_advice(self, err)) from err

    def train_outputs(self, inputs: Tensor,
                      batch: Optional[DatabaseView] = None
                      ) -> Dict[str, Tensor]:
        """Everything the head returns, as a dict.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            batch (DatabaseView, optional): In a training batch, the
                database's :meth:`~HashDatabase.batch_view` (the round, the
                pass, the labels), handed as ``batch=`` to a neck or head
                whose class sets ``needs_batch = True`` (ExchNet's feature
                exchange, HashNet's continuation); None elsewhere.

        Returns:
            dict[str, Tensor]: ``relaxed_codes`` ((B, relaxed_dims) in train
            mode, (B, code_length) in eval mode) and whatever else the
            head hands to its loss (e.g. A2-Net's features).
        """
        outputs = _call(self.head,
                        _call(self.neck, self.backbone(inputs), batch), batch)
        if isinstance(outputs, Tensor):
            return dict(relaxed_codes=outputs)
        if 'relaxed_codes' not in outputs:
            raise KeyError(
                f'{type(self.head).__name__} returned {sorted(outputs)}; a '
                f"head's dict output needs 'relaxed_codes'")
        return outputs

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Relaxed codes: (B, relaxed_dims) in train mode, (B, code_length)
        in eval mode."""
        return self.train_outputs(inputs)['relaxed_codes']

    def attention_maps(self, inputs: Tensor) -> Tensor:
        """The maps the codes attend to, from the first of neck and head
        that defines ``attention_maps`` (taking what its forward takes).

        Returns:
            Tensor: (B, M, h, w), M maps (one per bit or per descriptor),
            each non-negative and summing to 1 over its h x w positions.
        """
        feats = self.backbone(inputs)
        for module in (self.neck, self.head):
            if hasattr(module, 'attention_maps'):
                return module.attention_maps(feats)
            feats = module(feats)
        raise AttributeError(
            f'neither {type(self.neck).__name__} nor '
            f'{type(self.head).__name__} exposes attention maps')

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """MMEngine's entry point.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list[DataSample], optional): Need ``gt_label`` and
                ``sample_idx`` for ``mode='loss'``.
            mode (str): ``'tensor'`` returns the relaxed codes; ``'loss'`` a
                dict with ``loss_hash`` and ``loss_quant``; ``'predict'`` the
                data samples with ``hash_code`` ((k,) in {-1, +1}) set.
        """
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; expected "tensor", '
                           f'"loss" or "predict".')

    def loss(self, inputs: Tensor,
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """The loss of a batch, from the relaxed codes and the database's
        view of the batch; the database records the codes (ADSH's U)."""
        batch_indices = _sample_indices(data_samples, inputs.device,
                                        self.database.num_database)
        batch_labels = torch.cat([s.gt_label for s in data_samples]).to(
            inputs.device, non_blocking=True)
        batch = self.database.batch_view(batch_indices, batch_labels)
        outputs = self.train_outputs(inputs, batch)
        relaxed_codes = outputs.pop('relaxed_codes')
        # Recorded first: a memory of codes (HashNet, DPSH) pairs the batch
        # with its own codes too. ADSH's B, which the view holds, changes
        # only between rounds.
        self.database.record(batch_indices, relaxed_codes)
        # The loss computes in at least fp32 (see ADSHLoss.forward).
        view = self.database.view(
            batch_indices, batch_labels,
            torch.promote_types(relaxed_codes.dtype, torch.float32))
        if getattr(self.loss_module, 'needs_inputs', False):
            outputs['inputs'] = inputs
        if getattr(self.loss_module, 'needs_network', False):
            # A loss on a second view of the batch made from the first
            # forward (FISH's peak-erased images) runs the same network on
            # it, with gradient.
            outputs['network'] = partial(self.train_outputs, batch=batch)
        return self.loss_module(relaxed_codes, view, **outputs)

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Binary codes of the original queries (branch 0) and, with a
        :attr:`prototype`, their scores over its gallery.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list[DataSample], optional): Filled in; new ones
                when None.

        Returns:
            list[DataSample]: ``hash_code`` ((k,) in {-1, +1}); with a
            prototype also ``pred_score`` ((N,) float64 over the gallery,
            :meth:`matching`), as MMPretrain's retrievers set it.
        """
        codes = binarize(self.extract_feat(inputs)[:, :self.code_length])
        scores = None if self.prototype is None else self.matching(codes)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(codes))]
        for i, (sample, code) in enumerate(zip(data_samples, codes)):
            sample.set_field(code, 'hash_code', dtype=Tensor)
            if scores is not None:
                sample.set_pred_score(scores[i])
        return data_samples

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Read checkpoints of the layout before the database slot, and
        refuse a checkpoint of another configuration: MMEngine loads with
        ``strict=False``, where a shape mismatch is only a warning and the
        model would go on with random weights. (The database adopts a
        checkpoint's database size itself.)"""
        for old, new in _LEGACY_DATABASE_KEYS.items():
            if prefix + old in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        network = {
            name: tensor
            for name, tensor in self.state_dict().items()
            if not name.startswith('database.')
        }
        _check_same_method(self, network, state_dict, prefix)
        # Heads name the parameter whose rows are the bits, so that a code
        # length mismatch is reported as one.
        code_key = prefix + 'head.' + getattr(self.head, 'code_length_param',
                                              '')
        if code_key in state_dict and (state_dict[code_key].size(0) !=
                                       self.code_length):
            raise ValueError(
                f'checkpoint has code_length={state_dict[code_key].size(0)} '
                f'({code_key}), the model {self.code_length}: it comes from '
                f'another configuration')
        mismatched = [
            f'{name}: checkpoint {tuple(state_dict[prefix + name].shape)}, '
            f'model {tuple(tensor.shape)}'
            for name, tensor in network.items()
            if prefix + name in state_dict
            and state_dict[prefix + name].shape != tensor.shape
        ]
        if mismatched:
            raise ValueError(
                f'checkpoint does not fit this model ({len(mismatched)} '
                f'shapes differ; another configuration?): ' +
                '; '.join(mismatched[:5]))
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # New weights: the file they came from, when the loader noted it.
        self.checkpoint_file = local_metadata.get(CHECKPOINT_FILE_KEY)


def _check_same_method(model: HashRetriever, network: Dict[str, Tensor],
                       state_dict: dict, prefix: str) -> None:
    """Refuse a checkpoint whose neck and head parameters are another
    method's: MMEngine loads with ``strict=False``, where missing and
    unexpected keys are only a warning."""
    parts = ('neck.', 'head.')
    ours = {name for name in network if name.startswith(parts)}
    theirs = {
        name[len(prefix):]
        for name in state_dict
        if name.startswith(prefix) and name[len(prefix):].startswith(parts)
    }
    if not theirs or theirs == ours:
        return
    missing, unexpected = sorted(ours - theirs), sorted(theirs - ours)
    raise ValueError(
        f'checkpoint holds another method\'s neck or head than this '
        f'{type(model.neck).__name__} + {type(model.head).__name__} model '
        f'(code_length={model.code_length}): {len(missing)} keys missing '
        f'(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. '
        f'{unexpected[:3]}); use its own config, or convert it with '
        f'tools/convert_official_ckpt.py')


def _call(module: torch.nn.Module, feats, batch: Optional[DatabaseView]):
    """``module(feats)``, with ``batch=`` for a part that declares
    ``needs_batch`` (given only in a training batch)."""
    if batch is not None and getattr(module, 'needs_batch', False):
        return module(feats, batch=batch)
    return module(feats)


def binarize(relaxed_codes: Tensor) -> Tensor:
    """Sign with ties to +1, so that every bit is in {-1, +1} (the one
    sign rule, :func:`~mmqueryopt.evaluation.functional.codes.sign`)."""
    return sign(relaxed_codes)


def _sample_indices(data_samples: Sequence[DataSample], device,
                    num_database: int) -> Tensor:
    try:
        indices = [s.metainfo['sample_idx'] for s in data_samples]
    except KeyError:
        raise KeyError(
            "data samples lack 'sample_idx' in their metainfo; keep it in "
            "PackInputs' meta_keys: ADSH needs each image's database row"
        ) from None
    # Checked on the host list: testing the device tensor would make the
    # host wait for the GPU at every batch.
    largest = max(indices)
    if num_database and largest >= num_database:
        raise IndexError(
            f'sample_idx {largest} is outside the database of '
            f'{num_database} images: the training set changed since the '
            f'database was prepared')
    return torch.as_tensor(indices, dtype=torch.long).to(device,
                                                         non_blocking=True)


def _fit_to_backbone(neck: dict, backbone: torch.nn.Module) -> dict:
    """``neck`` as its class's ``fit_to_backbone`` completes it, if any."""
    neck_type = neck['type']
    neck_class = (neck_type if isinstance(neck_type, type) else
                  MODELS.get(neck_type))
    fit = getattr(neck_class, 'fit_to_backbone', None)
    return neck if fit is None else fit(neck, backbone)


def _freeze(model: BaseModel, names: Sequence[str]) -> None:
    """Take the gradient from ``frozen_modules``' submodules or parameters.

    Raises:
        ValueError: Some names are found and others not.
    """
    targets = {name: _frozen_target(model, name) for name in names}
    absent = [name for name, target in targets.items() if target is None]
    if absent and len(absent) < len(targets):
        raise ValueError(
            f'model.frozen_modules names {absent[0]!r}, which is neither a '
            f'submodule nor a parameter of the model')
    if absent:
        # All absent: names written for the backbone a config swapped out.
        print_log(
            f'model.frozen_modules names none of this model\'s submodules '
            f'or parameters ({", ".join(absent)}): nothing is frozen. Set it '
            f'to the backbone\'s stem and first stage to freeze them',
            logger='current', level=logging.WARNING)
    for target in targets.values():
        if target is not None:
            target.requires_grad_(False)


def _frozen_target(model: BaseModel, name: str):
    """The submodule or parameter ``name`` of ``frozen_modules``, or None."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        pass
    try:
        return model.get_parameter(name)
    except AttributeError:
        return None


def _pretrained_advice(model: BaseModel, err: Exception) -> str:
    checkpoints = [
        (name, cfg['checkpoint'])
        for name, module in model.named_modules()
        for cfg in _as_list(getattr(module, 'init_cfg', None))
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
    ]
    sources = [f'{name}: {ckpt}' for name, ckpt in checkpoints]
    # Both URLs and torchvision:// names are fetched through torch.hub,
    # which looks for the URL's file name in <hub dir>/checkpoints first.
    files = sorted({f for f in (_hub_file_name(c) for _, c in checkpoints)
                    if f})
    # Every module that loads weights needs its own key (A2-Net's neck
    # loads layer4 copies beside the backbone).
    names = [name for name, _ in checkpoints] or ['backbone']
    local = ' '.join(f'model.{name}.init_cfg.checkpoint=/path/to/file.pth'
                     for name in names)
    drop = ' '.join(f'model.{name}.init_cfg=None' for name in names)
    hub_dir = torch.hub.get_dir()
    return (f'could not load pretrained weights ({err}). Sources: '
            f'{"; ".join(sources) or "none found"}. With no network, put the '
            f'file ({", ".join(files) or "the checkpoint"}) in '
            f'{hub_dir}/checkpoints/, or point the config at a local copy: '
            f'--cfg-options {local}, or drop pretraining with {drop}')


def _hub_file_name(checkpoint: str) -> Optional[str]:
    """The file torch.hub caches a URL or torchvision:// name as; None for
    a local path."""
    if checkpoint.startswith('torchvision://'):
        from mmengine.runner.checkpoint import get_torchvision_models
        checkpoint = get_torchvision_models().get(
            checkpoint[len('torchvision://'):], '')
    if checkpoint.startswith(('http://', 'https://')):
        return checkpoint.split('?')[0].rsplit('/', 1)[-1]
    return None


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
