# Our retriever with MMPretrain's ImageNet preprocessing (RGB, ImageNet mean
# and std on 0-255 pixels): what every ImageNet-pretrained model base adds
# its backbone, neck, head, loss and database to.
model = dict(
    # Scoped: mmpretrain.get_model builds models in MMPretrain's scope,
    # where only the prefixed name finds ours.
    type='mmqueryopt.HashRetriever',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
)
