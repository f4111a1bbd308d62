from .adsh_round_hook import ADSHRoundHook, get_round_sampler
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_io import CheckpointFileError, load_checkpoint_file
from .epoch_seed_hook import EpochSeedHook, epoch_worker_init_fn
from .resume_evaluation_hook import ResumeEvaluationHook
from .resume_schedule_hook import ResumeScheduleHook
from .retrieval_database_hook import RetrievalDatabaseHook
from .retrieval_visualization_hook import RetrievalVisualizationHook
from .round_log_processor import RoundLogProcessor
from .round_sampler import RoundBatchSampler, RoundSampler
from .safe_globals import allow_mmengine_checkpoint_types
from .speed_switch_hook import SpeedSwitchHook
from .utils import unwrap_model

__all__ = [
    'ADSHRoundHook', 'AtomicCheckpointHook', 'CheckpointFileError',
    'EpochSeedHook', 'ResumeEvaluationHook', 'ResumeScheduleHook',
    'RetrievalDatabaseHook', 'RetrievalVisualizationHook',
    'RoundBatchSampler', 'RoundLogProcessor', 'RoundSampler',
    'SpeedSwitchHook',
    'allow_mmengine_checkpoint_types', 'epoch_worker_init_fn',
    'get_round_sampler', 'load_checkpoint_file', 'unwrap_model'
]
