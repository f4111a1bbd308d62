"""The hashing model: backbone, neck and hash head, plus ADSH's database."""
import logging
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce, broadcast, is_distributed
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from mmqueryopt.registry import MODELS

_DATABASE_BUFFERS = ('database_codes', 'sampled_codes', 'database_labels')


@MODELS.register_module()
class HashRetriever(BaseModel):
    """Image-to-code model trained by asymmetric deep supervised hashing.

    Besides the network it owns ADSH's state, saved in every checkpoint:
    ``database_codes`` (B, (m, L): one relaxed-width code for every training
    image), ``sampled_codes`` (U, (m, L): the latest network output of each
    image sampled this round, zeros elsewhere) and ``database_labels`` ((m,)
    class ids). They are empty until :meth:`init_database` sizes them (the
    ADSH hook does so from the training set) or a checkpoint fills them.
    DDP leaves them alone (no buffer broadcast): U is rank-local until
    :meth:`update_database_codes` combines it.

    Args:
        backbone (dict): Any MMPretrain backbone returning at least two maps.
        neck (dict): E.g. ``SubtleFeatureNeck``. A neck class with a
            ``fit_to_backbone(cfg, backbone)`` classmethod completes its
            config from the built backbone first (e.g. the resolution ratio
            of the maps it fuses), so that a backbone swap is one key.
        head (dict): E.g. ``QueryHashHead``; gives ``code_length`` and
            ``relaxed_dims`` (L, the width of B: k times the auxiliary
            branches, or k), and optionally ``code_length_param``, the name
            of its parameter with one row per bit. Its forward returns the
            relaxed codes, or in training a dict with ``relaxed_codes`` and
            further tensors for the loss (:meth:`train_outputs`).
        loss (dict): ``ADSHLoss`` or a subclass, with
            ``solve_database_codes`` and ``start_round``. Defaults to
            ``ADSHLoss``.
        frozen_modules (Sequence[str]): Submodules or parameters that get
            no gradient, e.g. ``('backbone.conv1', 'backbone.bn1',
            'backbone.layer1')`` or a ViT's ``'backbone.cls_token'``. Unlike
            a backbone's ``frozen_stages`` this leaves their BatchNorm in
            train mode, as the authors do. Names of which the model has
            none (those of another backbone, after a swap) are skipped with
            a warning; some present and some absent is an error (a typo).
        data_preprocessor (dict, optional): Defaults to MMPretrain's
            ``ClsDataPreprocessor``.
        init_cfg (dict, optional): MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 loss: dict = dict(type='ADSHLoss'),
                 frozen_modules: Sequence[str] = (),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(_fit_to_backbone(neck, self.backbone))
        self.head = MODELS.build(head)
        self.loss_module = MODELS.build(loss)
        _freeze(self, frozen_modules)
        width = self.head.relaxed_dims
        self.register_buffer('database_codes', torch.zeros(0, width))
        self.register_buffer('sampled_codes', torch.zeros(0, width))
        self.register_buffer('database_labels',
                             torch.zeros(0, dtype=torch.long))
        # Each rank writes only its own rows of U; a DDP wrapper that
        # broadcasts buffers (torch's default) would overwrite them with
        # rank 0's copy at every forward. B and U are synchronised by
        # update_database_codes instead.
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            self, list(_DATABASE_BUFFERS))

    @property
    def code_length(self) -> int:
        return self.head.code_length

    @property
    def num_database(self) -> int:
        return self.database_codes.size(0)

    def init_weights(self) -> None:
        """Initialise, turning a missing pretrained file into advice."""
        try:
            super().init_weights()
        except OSError as err:  # URLError and FileNotFoundError included
            raise OSError(_pretrained_advice(self, err)) from err

    @torch.no_grad()
    def init_database(self, labels: Tensor,
                      generator: Optional[torch.Generator] = None) -> None:
        """Size the database for ``labels`` and draw B from N(0, 1).

        B starts as unsigned Gaussian values, as in the authors' code; the
        first :meth:`update_database_codes` makes it binary.

        Args:
            labels (Tensor): (m,) class ids of the training images, in
                dataset order (row i is dataset index i).
            generator (torch.Generator, optional): For a reproducible B.
        """
        device = self.database_codes.device
        # The model's float type (float64 after .double()); B is drawn in
        # float32 whatever it is, so its values do not depend on it.
        dtype = self.database_codes.dtype
        width = self.head.relaxed_dims
        self.database_labels = labels.to(device=device, dtype=torch.long)
        self.database_codes = torch.randn(
            len(labels), width, generator=generator).to(device, dtype)
        self.sampled_codes = torch.zeros(
            len(labels), width, device=device, dtype=dtype)

    def train_outputs(self, inputs: Tensor) -> Dict[str, Tensor]:
        """Everything the head returns, as a dict.

        Returns:
            dict[str, Tensor]: ``relaxed_codes`` ((B, relaxed_dims) in train
            mode, (B, code_length) in eval mode) and whatever else the
            head hands to its loss (e.g. A2-Net's features).
        """
        outputs = self.head(self.neck(self.backbone(inputs)))
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
        """ADSH loss of a batch; records its relaxed codes in U."""
        if self.num_database == 0:
            raise RuntimeError(
                'HashRetriever has no database: call init_database() or '
                'train with ADSHRoundHook in custom_hooks')
        outputs = self.train_outputs(inputs)
        relaxed_codes = outputs.pop('relaxed_codes')
        batch_indices = _sample_indices(data_samples, relaxed_codes.device,
                                        self.num_database)
        batch_labels = torch.cat([s.gt_label for s in data_samples]).to(
            relaxed_codes.device, non_blocking=True)
        # U stays fp32 under bf16 autocast.
        self.sampled_codes[batch_indices] = relaxed_codes.detach().to(
            self.sampled_codes.dtype)
        return self.loss_module(relaxed_codes, batch_labels, batch_indices,
                                self.database_codes, self.database_labels,
                                inputs=inputs, **outputs)

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Binary codes of the original queries (branch 0)."""
        codes = binarize(self.extract_feat(inputs)[:, :self.code_length])
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(codes))]
        for sample, code in zip(data_samples, codes):
            sample.set_field(code, 'hash_code', dtype=Tensor)
        return data_samples

    @torch.no_grad()
    def start_round(self, round_index: int, sampled_indices: Tensor) -> None:
        """Forget U and tell the loss which round and sample come next;
        called before every training epoch (one epoch = one round).

        Args:
            round_index (int): 0-based.
            sampled_indices (Tensor): (s,) the round's database rows, over
                all ranks.
        """
        self.sampled_codes.zero_()
        sampled_indices = sampled_indices.to(self.database_labels.device)
        self.loss_module.start_round(round_index,
                                     self.database_labels[sampled_indices],
                                     self.database_labels)

    @torch.no_grad()
    def update_database_codes(self, sampled_indices: Tensor) -> None:
        """ADSH's discrete step over the round's sampled images.

        Under DDP each rank wrote only its shard's rows of U, so the sum over
        ranks is the full U; B is solved on every rank and rank 0's copy is
        broadcast so that all ranks hold the same codes bit for bit.

        Args:
            sampled_indices (Tensor): (s,) database rows sampled this round.
        """
        sampled_indices = sampled_indices.to(self.database_codes.device)
        sampled_codes = self.sampled_codes[sampled_indices]
        if is_distributed():
            all_reduce(sampled_codes, op='sum')
        codes = self.loss_module.solve_database_codes(
            sampled_codes, sampled_indices, self.database_codes,
            self.database_labels)
        if is_distributed():
            broadcast(codes, src=0)
        self.database_codes.copy_(codes)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Adopt a checkpoint's database size when ours is still empty, and
        refuse a checkpoint of another configuration: MMEngine loads with
        ``strict=False``, where a shape mismatch is only a warning and the
        model would go on with random weights."""
        network = {
            name: tensor
            for name, tensor in self.state_dict().items()
            if name not in _DATABASE_BUFFERS
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
        for name in _DATABASE_BUFFERS:
            saved = state_dict.get(prefix + name)
            if saved is None:
                continue
            ours = getattr(self, name)
            if saved.shape[1:] != ours.shape[1:]:
                raise ValueError(
                    f'checkpoint {name} has shape {tuple(saved.shape)}, the '
                    f'model expects (m, {", ".join(map(str, ours.shape[1:]))}'
                    f'): relaxed_dims or label format differ from the config')
            if ours.size(0) == 0:
                setattr(self, name, torch.empty_like(saved, device=ours.device))
            elif saved.size(0) != ours.size(0):
                raise ValueError(
                    f'checkpoint {name} holds {saved.size(0)} database '
                    f'images but the training set has {ours.size(0)}: the '
                    f'checkpoint was trained on another dataset or split')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


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


def binarize(relaxed_codes: Tensor) -> Tensor:
    """Sign with ties to +1, so that every bit is in {-1, +1}."""
    return torch.where(relaxed_codes >= 0, 1.0, -1.0).to(relaxed_codes)


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
    if largest >= num_database:
        raise IndexError(
            f'sample_idx {largest} is outside the database of '
            f'{num_database} images: the training set changed since '
            f'init_database()')
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
