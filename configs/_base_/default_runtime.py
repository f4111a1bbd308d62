# Runtime shared by every mmqueryopt run.
default_scope = 'mmqueryopt'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # The authors report the best test-set evaluation; keep that checkpoint.
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=2,
        save_best='retrieval/mAP', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# ADSH's rounds (B update) and the database handed to the metric.
custom_hooks = [
    dict(type='ADSHRoundHook'),
    dict(type='RetrievalDatabaseHook', source='learned'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=42, deterministic=False)
