from mmqueryopt.registry import import_submodules
from .adsh_round_hook import ADSHRoundHook, get_round_sampler
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .class_anchor_hook import ClassAnchorHook
from .epoch_seed_hook import EpochSeedHook, epoch_worker_init_fn
from .resume_evaluation_hook import ResumeEvaluationHook
from .resume_schedule_hook import ResumeScheduleHook
from .retrieval_database_hook import RetrievalDatabaseHook
from .retrieval_visualization_hook import RetrievalVisualizationHook
from .round_log_processor import RoundLogProcessor
from .round_sampler import RoundBatchSampler, RoundSampler
from .speed_switch_hook import SpeedSwitchHook
from .utils import unwrap_model

# Any further module of this folder registers its hooks too (a method's
# hook is a new file).
import_submodules(__name__)

__all__ = [
    'ADSHRoundHook', 'AtomicCheckpointHook', 'ClassAnchorHook',
    'EpochSeedHook', 'ResumeEvaluationHook', 'ResumeScheduleHook',
    'RetrievalDatabaseHook', 'RetrievalVisualizationHook',
    'RoundBatchSampler', 'RoundLogProcessor', 'RoundSampler',
    'SpeedSwitchHook',
    'epoch_worker_init_fn', 'get_round_sampler', 'unwrap_model'
]
