"""Key rules for A2-Net's reference model (aassxun/DSH_Analysis
``models/A_2_net.py``) into an A2-Net model.

The reference's torchvision-layout backbone (stem..layer3) has MMPretrain
ResNet's names; its ``refine_local`` / ``refine_global`` layer4 copies and
its ``attention`` tower become the neck's refiners and tower; W becomes the
head's. The reference model always holds A2-Net++'s image generators
(``encoder`` + ``netG`` decode the holistic feature, ``encoder2`` + ``netG2``
its reconstruction); A2-Net has none, so their keys are left out here and
kept by the ``a2netpp`` rules.
"""
# A key only A2-Net's checkpoints have, to detect the format: the tied
# hash weight (ExchNet's and SEMICON's reference models share the
# refine_local / refine_global layer4 copies).
SIGNATURE = r'^W$'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.tied_weight'


# Reference keys an A2-Net model has no place for, and why.
LEFT_OUT = r'^(encoder2?|netG2?)\.'
LEFT_OUT_REASON = (
    "A2-Net++'s image generators (encoder, netG, encoder2, netG2), which "
    'A2-Net does not have; convert with --method a2netpp to keep them')


def _generator_layer(source: str):
    """netG's ``layer1..6`` are our ``upsampling.0..5``."""
    return lambda match: (f'head.image_generators.{source}.upsampling.'
                          f'{int(match[1]) - 1}.')


# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^backbone\.', 'backbone.'),
    (r'^attention\.layer4\.', 'neck.attention_tower.'),
    (r'^refine_local\.layer4\.', 'neck.local_refiner.'),
    (r'^refine_global\.layer4\.', 'neck.global_refiner.'),
    (r'^W$', 'head.tied_weight'),
    (r'^encoder\.', 'head.image_generators.holistic.latent_proj.'),
    (r'^netG\.layer(\d)\.', _generator_layer('holistic')),
    (r'^encoder2\.', 'head.image_generators.reconstructed.latent_proj.'),
    (r'^netG2\.layer(\d)\.', _generator_layer('reconstructed')),
]
