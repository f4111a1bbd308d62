# A2-Net++ (Wei et al., TPAMI 2023) on ImageNet-pretrained ResNet-50: A2-Net
# (a2net_r50.py) plus the image reconstruction path. RECONSTRUCTED FROM CODE,
# not from the paper (only its abstract is available; see docs/a2net.md):
# two DCGAN-style generators decode the holistic feature x and its
# reconstruction W^T tanh(Wx) to 224x224 images; pixel MSE against the input
# tensor, weights 0.01 before and 0.1 from the switch round for x's image;
# the second image's term is computed but left out of the sum in the code
# (weights 0).
_base_ = ['./a2net_r50.py']

model = dict(
    head=dict(image_sources=('holistic', 'reconstructed')),
    loss=dict(
        pixel_weights=(0.01, 0.1),
        reconstructed_pixel_weights=(0.0, 0.0)))
