# A2-Net++ (TPAMI 2023), FGVC-Aircraft, 48 bits: A2-Net plus the image
# reconstruction path. RECONSTRUCTED FROM CODE, not from the paper (only its
# abstract is available): two DCGAN-style generators decode the holistic
# feature x and its reconstruction W^T tanh(Wx) to 224x224 images; pixel MSE
# against the input tensor, weights 0.01 before and 0.1 from the switch
# round for x's image; the second image's term is computed but left out of
# the sum in the code (weights 0). Schedule: A2-Net's (A2-Net++'s unknown).
_base_ = [
    '_base_/models/a2net_r50.py',
    '_base_/schedules/a2net_aircraft.py',
]

model = dict(
    neck=dict(num_attentions=48),
    head=dict(code_length=48, in_channels=(48 + 1) * 2048,
              image_sources=('holistic', 'reconstructed')),
    loss=dict(
        switch_round=30,
        pixel_weights=(0.01, 0.1),
        reconstructed_pixel_weights=(0.0, 0.0)))
