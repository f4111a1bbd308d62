"""A2-Net's loss (NeurIPS 2021) and A2-Net++'s image terms: ADSH's hash and
quantisation terms plus feature reconstruction and code decorrelation from
a switch round on.

Two formulations of the extra terms, with F = tanh(W x) (n, k), x (n, d),
x_hat = W^T F:

- ``'code'`` (default; the co-author's DSH_Analysis code, runnable
  evidence): ``rec = mean((x_hat - x)^2)`` over the n*d entries,
  ``decorr = mean((F^T F - n' I)^2) / (n' k)`` over the k*k entries, n' the
  configured batch size; no consistency term.
- ``'paper'`` (the paper's equation, divided as a whole by n*m so that its
  hash term equals ADSH's scaled one: a constant factor, i.e. a learning-
  rate change): ``rec = ||x_hat - x||^2 / (n m)``, ``consistency =
  ||W x - F||^2 / (n m)`` (lambda = 1), ``decorr = ||F^T F - n I||^2 /
  (n k) / (n m)`` (alpha = 1/(n k)).

Before ``switch_round`` (0-based ADSH round; by default half the run's
rounds, as the code switches) only hash + quant count; the terms are still
returned, multiplied by 0, for the log.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..databases import DatabaseView
from .adsh_loss import ADSHLoss

_FORMULATIONS = ('code', 'paper')
_IMAGE_KEYS = dict(holistic='generated_images_holistic',
                   reconstructed='generated_images_reconstructed')
_FEATURE_KEYS = ('holistic_feats', 'reconstructed_feats', 'code_logits')


@MODELS.register_module()
class A2NetLoss(ADSHLoss):
    """ADSH's loss plus A2-Net's (and optionally A2-Net++'s) terms.

    ADSH's gamma and similarity (the code's is soft) are the database's
    (``model.database``).

    Args:
        scale_bits (int): Numerator of ADSH's 12/k scaling. Defaults to 12.
        formulation (str): ``'code'`` or ``'paper'`` (module docstring).
        switch_round (int, optional): First 0-based round with the extra
            terms. None: half the run's rounds (``train_cfg.max_epochs //
            2``, as the code switches). Defaults to None.
        rec_weight (float): Weight of the reconstruction term from the
            switch round. Defaults to 1.
        decorr_weight (float): Weight of the decorrelation term from the
            switch round. Defaults to 1.
        consistency_weight (float, optional): lambda of ||W x - F||^2 from
            the switch round; None: 0 for ``'code'``, 1 for ``'paper'``.
        decorr_batch_size (int, optional): n' of the code's decorrelation
            normaliser (its configured batch size); None uses the batch's n.
        pixel_weights (Sequence[float], optional): A2-Net++ (reconstructed
            from code): (before, from) the switch round, weights of the pixel
            MSE between the image decoded from x and the input tensor; the
            code's are (0.01, 0.1). Needs the head's ``'holistic'`` image
            generator.
        reconstructed_pixel_weights (Sequence[float], optional): The same
            for the image decoded from W^T F (computed, then left out of
            the sum in the code: (0, 0)). Needs the ``'reconstructed'``
            generator.
    """

    def __init__(self,
                 scale_bits: int = 12,
                 formulation: str = 'code',
                 switch_round: Optional[int] = None,
                 rec_weight: float = 1.0,
                 decorr_weight: float = 1.0,
                 consistency_weight: Optional[float] = None,
                 decorr_batch_size: Optional[int] = None,
                 pixel_weights: Optional[Sequence[float]] = None,
                 reconstructed_pixel_weights: Optional[Sequence[float]] = None
                 ):
        super().__init__(scale_bits)
        if formulation not in _FORMULATIONS:
            raise ValueError(f'model.loss.formulation must be one of '
                             f'{_FORMULATIONS}, got {formulation!r}')
        if switch_round is not None and (not isinstance(switch_round, int)
                                         or switch_round < 0):
            raise ValueError(f'model.loss.switch_round must be None (half '
                             f'the rounds) or a round index >= 0, got '
                             f'{switch_round!r}')
        if decorr_batch_size is not None and decorr_batch_size < 1:
            raise ValueError(f'model.loss.decorr_batch_size must be None or '
                             f'positive, got {decorr_batch_size!r}')
        self.formulation = formulation
        self.switch_round = switch_round
        self.rec_weight = rec_weight
        self.decorr_weight = decorr_weight
        self.consistency_weight = (
            consistency_weight if consistency_weight is not None else
            float(formulation == 'paper'))
        self.decorr_batch_size = decorr_batch_size
        self.pixel_weights = dict(
            holistic=_phase_pair(pixel_weights, 'pixel_weights'),
            reconstructed=_phase_pair(reconstructed_pixel_weights,
                                      'reconstructed_pixel_weights'))
        # A2-Net++'s pixel terms compare decoded images with the input.
        self.needs_inputs = any(
            weights is not None for weights in self.pixel_weights.values())

    def first_extra_round(self, view: DatabaseView) -> int:
        """The switch round of this run: the configured one, or half the
        run's rounds."""
        if self.switch_round is not None:
            return self.switch_round
        return view.num_rounds // 2

    def extra_terms_on(self, view: DatabaseView) -> bool:
        """Whether the view's round is at or past the switch round."""
        return max(view.round_index, 0) >= self.first_extra_round(view)

    def extra_losses(self, relaxed_codes: Tensor, view: DatabaseView,
                     **train_outputs) -> Dict[str, Tensor]:
        """Reconstruction, decorrelation, optionally consistency and pixel
        terms, already weighted for the current phase.

        Args:
            relaxed_codes (Tensor): F, (n, k).
            view (DatabaseView): The round, and B for the paper
                formulation's database size m.
            **train_outputs: ``holistic_feats`` and ``reconstructed_feats``
                (n, d), ``code_logits`` W x (n, k), optionally
                ``generated_images_<source>`` (n, 3, H', W'), and
                ``inputs`` (n, 3, H, W).

        Returns:
            dict[str, Tensor]: ``loss_rec``, ``loss_decorr``, and
            ``loss_consistency`` / ``loss_pixel_<source>`` when configured.
        """
        self._check_outputs(train_outputs)
        on = self.extra_terms_on(view)
        # The paper formulation divides by n*m, m the database size.
        num_database = max(view.database_codes.size(0), 1)
        feats = train_outputs['holistic_feats'].to(relaxed_codes.dtype)
        reconstructed = train_outputs['reconstructed_feats'].to(
            relaxed_codes.dtype)
        num = relaxed_codes.size(0)
        num_bits = relaxed_codes.size(1)
        gram = relaxed_codes.T @ relaxed_codes
        if self.formulation == 'code':
            scale = self.decorr_batch_size or num
            rec = F.mse_loss(reconstructed, feats)
            eye = torch.eye(num_bits, dtype=gram.dtype, device=gram.device)
            decorr = F.mse_loss(gram, scale * eye) / scale / num_bits
        else:
            pairs = num * num_database
            rec = (reconstructed - feats).pow(2).sum() / pairs
            eye = torch.eye(num_bits, dtype=gram.dtype, device=gram.device)
            decorr = (gram - num * eye).pow(2).sum() / (num * num_bits) / pairs
        phase_weight = float(on)
        losses = dict(loss_rec=self.rec_weight * phase_weight * rec,
                      loss_decorr=self.decorr_weight * phase_weight * decorr)
        if self.consistency_weight:
            logits = train_outputs['code_logits'].to(relaxed_codes.dtype)
            gap = (logits - relaxed_codes).pow(2)
            consistency = (gap.mean() if self.formulation == 'code' else
                           gap.sum() / (num * num_database))
            losses['loss_consistency'] = (
                self.consistency_weight * phase_weight * consistency)
        for source, weights in self.pixel_weights.items():
            if weights is None:
                continue
            images = train_outputs[_IMAGE_KEYS[source]].to(
                relaxed_codes.dtype)
            target = _resized(train_outputs['inputs'].to(images.dtype),
                              images)
            losses[f'loss_pixel_{source}'] = weights[int(on)] * F.mse_loss(
                images, target)
        return losses

    def _check_outputs(self, outputs: dict) -> None:
        missing = [key for key in _FEATURE_KEYS[:2] if key not in outputs]
        if missing:
            raise KeyError(
                f'A2NetLoss needs the head outputs {missing}; got '
                f'{sorted(outputs)}: pair it with TiedAutoencoderHashHead')
        for source, key in _IMAGE_KEYS.items():
            option = ('pixel_weights' if source == 'holistic' else
                      'reconstructed_pixel_weights')
            if self.pixel_weights[source] is not None and key not in outputs:
                raise ValueError(
                    f'model.loss.{option} is an A2-Net++ option, but the '
                    f'model has no {source!r} image decoder: add '
                    f"'{source}' to model.head.image_sources, or set "
                    f'model.loss.{option}=None')
            if self.pixel_weights[source] is None and key in outputs:
                raise ValueError(
                    f"the head decodes images from the {source!r} feature "
                    f'(A2-Net++) but model.loss.{option} is None: set its '
                    f'(before, from switch round) weights, or remove '
                    f"'{source}' from model.head.image_sources")
        unused = sorted(
            set(outputs) - set(_FEATURE_KEYS) - set(_IMAGE_KEYS.values()) -
            {'inputs'})
        if unused:
            raise TypeError(f'A2NetLoss got training outputs {unused} that '
                            f'it does not use')


def _phase_pair(weights: Optional[Sequence[float]],
                name: str) -> Optional[tuple]:
    if weights is None:
        return None
    if len(weights) != 2:
        raise ValueError(
            f'model.loss.{name} must be (weight before, weight from the '
            f'switch round), got {weights!r}')
    return tuple(float(w) for w in weights)


def _resized(images: Tensor, like: Tensor) -> Tensor:
    """``images`` (the pixel target) at ``like``'s size: the generators
    always decode 224x224, the reference's input size."""
    if images.shape[-2:] == like.shape[-2:]:
        return images
    return F.interpolate(images, size=like.shape[-2:], mode='bilinear',
                         align_corners=False)
