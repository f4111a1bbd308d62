"""Key rules for A2-Net's reference model (aassxun/DSH_Analysis
``models/A_2_net.py``, also the A2-Net++ image generators).

The reference's torchvision-layout backbone (stem..layer3) has MMPretrain
ResNet's names; its ``refine_local`` / ``refine_global`` layer4 copies and
its ``attention`` tower become the neck's refiners and tower; W and the
generators (``encoder`` + ``netG`` decode the holistic feature,
``encoder2`` + ``netG2`` its reconstruction) become the head's.
"""
# A key only A2-Net's checkpoints have, to detect the format.
SIGNATURE = r'^refine_local\.layer4\.'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.tied_weight'


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
