from .adsh_round_hook import ADSHRoundHook
from .epoch_seed_hook import EpochSeedHook
from .retrieval_database_hook import RetrievalDatabaseHook
from .round_sampler import RoundSampler
from .safe_globals import allow_mmengine_checkpoint_types
from .utils import unwrap_model

__all__ = [
    'ADSHRoundHook', 'EpochSeedHook', 'RetrievalDatabaseHook',
    'RoundSampler', 'allow_mmengine_checkpoint_types', 'unwrap_model'
]
