# Runtime shared by every mmqueryopt run.
default_scope = 'mmqueryopt'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # The authors report the best test-set evaluation; keep that checkpoint.
    # Atomic saves: a kill never leaves a partial or missing checkpoint.
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2,
        save_best='retrieval/mAP', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# ADSH's rounds (one epoch = one round; B update after each), the database
# handed to the metric (the codes the model's database holds, e.g. ADSH's
# B, or else the network's codes of the training split read like the
# queries), per-round reseeding so that a resumed run replays
# the interrupted one; on resume, the config's lr schedule and the
# evaluation a kill may have cut short.
custom_hooks = [
    dict(type='ADSHRoundHook'),
    dict(type='RetrievalDatabaseHook', source='auto'),
    dict(type='EpochSeedHook'),
    dict(type='ResumeScheduleHook'),
    dict(type='ResumeEvaluationHook'),
    # Round means of the loss terms and each evaluation's PR curve to the
    # visualiser backends (LoggerHook sends the losses and mAP).
    dict(type='RoundVisualizerHook'),
]

# Training log lines name the round and the pass within it.
log_processor = dict(type='RoundLogProcessor')

# DDP with torch's default buffer broadcast: every rank trains and evaluates
# with rank 0's BatchNorm statistics, so the checkpoint holds what each rank
# used. ADSH's B and U are excluded from the broadcast by HashRetriever.
# (Options such as find_unused_parameters go here, not at the top level.)
model_wrapper_cfg = dict(type='MMDistributedDataParallel')

# No OpenCV threads in the main process or the loader's workers (which
# also get one torch thread each from torch). OpenMP's wait policy cannot
# be set here: torch has loaded OpenMP before a config is read, so the
# tools set it first thing (tools/openmp_env.py, docs/speed.md).
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# Scalars and images go to <work_dir>/<timestamp>/vis_data. TensorBoard too:
# --cfg-options visualizer.tensorboard=True (pip install -e ".[tensorboard]"),
# then tensorboard --logdir work_dirs.
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='HashingVisualizer', vis_backends=vis_backends, tensorboard=False)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=42, deterministic=False)

# Lets MMPretrain's own tools (and any MMEngine runner) use these configs.
custom_imports = dict(imports=['mmqueryopt'], allow_failed_imports=False)
