"""Two ADSH rounds of our training path replayed against a transcription of
the reference loop (tests/reference_loops.py), in float64.

Our side is the real path: MMEngine's Runner on the method's CUB 12-bit
config (loss, optimiser, round sampler, ADSHRoundHook), with the network
narrowed to its digits config and the data to a few 16x16 digits so that
it runs in seconds. The replay takes the same initial weights, B, batches
(images after the data preprocessor, in our order) and round draws, and
must give the same logged terms at every iteration, the same U and the same
bits of B after each round. The step is tame here (see docs/a2net.md,
"Training equals the reference"): a perturbation of the weights at float64
rounding level stays far below the tolerances over the two rounds, so a
difference can only come from the training step itself.
"""
import copy
import glob
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import reference_loops
from conftest import REPO
from mmqueryopt.registry import MODELS

NUM_SAMPLES, PASSES, BATCH, ROUNDS = 6, 2, 4, 2  # batches of 4 and 2 a pass
NUM_CLASSES = 10
RTOL = 1e-9


class Recorder(Hook):
    """Initial weights and B, every batch as the model saw it, every logged
    term, U before and B after each round's update."""
    priority = 'LOW'  # before_train after ADSHRoundHook's (NORMAL)

    def __init__(self):
        self.batches, self.logs, self.sampled, self.codes = [], [], [], []

    def before_train(self, runner):
        database = runner.model.database
        # ADSHDatabase.prepare draws B and sizes U in float32 whatever the
        # model's type; the replay runs in float64 throughout.
        database.codes = database.codes.double()
        database.sampled_codes = database.sampled_codes.double()
        self.weights = copy.deepcopy(runner.model.state_dict())
        self.initial_codes = runner.model.database.codes.clone()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        data = runner.model.data_preprocessor(data_batch, True)
        self.batches.append(dict(
            inputs=data['inputs'].clone(),
            rows=torch.tensor(
                [s.sample_idx for s in data['data_samples']])))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.logs.append({k: v.item() for k, v in outputs.items()})


class RoundEnds(Hook):

    def __init__(self, recorder, before_update):
        self.recorder = recorder
        self.before_update = before_update
        # ADSHRoundHook (NORMAL) solves B in between.
        self.priority = 'HIGH' if before_update else 'LOWEST'

    def after_train_epoch(self, runner):
        model = runner.model
        if self.before_update:
            self.recorder.sampled.append(model.database.sampled_codes.clone())
        else:
            self.recorder.codes.append(model.database.codes.clone())


def config_path(name):
    """A config by file name, in configs/ or a method folder under it."""
    found = glob.glob(osp.join(REPO, 'configs', '**', name), recursive=True)
    assert len(found) == 1, (name, found)
    return found[0]


def replay_config(method, data_root, work_dir):
    """The CUB 12-bit config (loss, optimiser, sampler, hooks) with the
    digits network, 16x16 digits, two short rounds, lr x0.1 after the
    first, no evaluation or checkpoints."""
    cfg = Config.fromfile(config_path(f'{method}_cub_12bit.py'))
    small = Config.fromfile(config_path(f'{method}_digits_12bit.py'))
    for part in ('backbone', 'neck', 'head', 'data_preprocessor'):
        cfg.model[part] = small.model[part]
    # Narrower still, for time (the attention tower needs 64 channels).
    if method == 'a2net':
        cfg.model.neck.out_channels = 32
        cfg.model.head.in_channels = 13 * 32
    else:
        cfg.model.backbone.update(stem_channels=8, base_channels=8)
        cfg.model.neck.update(in_channels=64, descriptor_channels=16,
                              memory_units=8)
        cfg.model.head.in_channels = 16
    if method == 'a2net':
        # The reference switches at max_iter // 2: our default (None, half
        # the run's rounds), which a dataset's config may pin for its own
        # length. It normalises the decorrelation by its batch size.
        cfg.model.loss.update(switch_round=None, decorr_batch_size=BATCH)
    cfg.train_dataloader = small.train_dataloader
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    cfg.train_dataloader.batch_size = BATCH
    cfg.train_dataloader.sampler.update(
        num_samples=NUM_SAMPLES, epochs_per_round=PASSES, seed=5)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg',
                'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.train_cfg = dict(by_epoch=True, max_epochs=ROUNDS)
    cfg.param_scheduler = dict(type='MultiStepLR', by_epoch=True,
                               milestones=[1], gamma=0.1)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1000
    cfg.randomness = dict(seed=0)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'replay_{uuid.uuid4().hex[:8]}'
    return cfg


def train_ours(cfg):
    runner = Runner.from_cfg(cfg)
    runner.model.double()
    recorder = Recorder()
    for hook in (recorder, RoundEnds(recorder, True),
                 RoundEnds(recorder, False)):
        runner.register_hook(hook)
    runner.train()
    sampler = runner.train_dataloader.batch_sampler.sampler
    recorder.draws = [sampler.round_indices(r) for r in range(ROUNDS)]
    recorder.labels = runner.model.database.labels.clone()
    return recorder


@pytest.fixture(scope='module')
def trained(digits_root, tmp_path_factory):
    """method -> (config, our run's record), each trained once."""
    init_default_scope('mmqueryopt')
    runs = {}
    for method in ('a2net', 'agmh'):
        cfg = replay_config(method, digits_root,
                            str(tmp_path_factory.mktemp(method)))
        runs[method] = (cfg, train_ours(cfg))
    return runs


def run_reference(method, cfg, ours, **changes):
    """The transcribed reference loop from our run's start, on our batches
    (split into rounds) and draws."""
    model = MODELS.build(cfg.model).double()
    model.load_state_dict(ours.weights)
    per_round = len(ours.batches) // ROUNDS
    rounds = [
        dict(sampled=ours.draws[r],
             batches=ours.batches[r * per_round:(r + 1) * per_round])
        for r in range(ROUNDS)
    ]
    settings = dict(lr=cfg.optim_wrapper.optimizer.lr, milestones=[1])
    settings.update(changes)
    return reference_loops.replay(
        method, model, rounds, ours.initial_codes, ours.labels, NUM_CLASSES,
        BATCH, **settings)


def mismatches(ours, reference):
    """Every way our record differs from the replay's, as strings."""
    found = []
    for it, (mine, theirs) in enumerate(zip(ours.logs, reference['logs'])):
        assert set(mine) == set(theirs), (it, sorted(mine), sorted(theirs))
        for key, value in theirs.items():
            if abs(mine[key] - value) > RTOL * max(abs(value), 1e-12):
                found.append(f'iteration {it} {key}: ours {mine[key]!r}, '
                             f'reference {value!r}')
    for r in range(ROUNDS):
        mine = ours.sampled[r][ours.draws[r]]
        theirs = reference['sampled'][r]
        if not torch.allclose(mine, theirs, rtol=RTOL, atol=1e-12):
            found.append(f'round {r} U: max diff '
                         f'{(mine - theirs).abs().max().item():.3g}')
        differing = (ours.codes[r] != reference['codes'][r]).sum().item()
        if differing:
            found.append(f'round {r} B: {differing} bits differ')
    return found


@pytest.mark.parametrize('method', ['a2net', 'agmh'])
def test_two_rounds_equal_the_reference_loop(trained, method):
    cfg, ours = trained[method]
    per_pass = [BATCH, NUM_SAMPLES - BATCH]
    assert [len(b['rows']) for b in ours.batches] == per_pass * PASSES * 2
    assert ours.batches[0]['inputs'].dtype == torch.float64
    assert ours.initial_codes.dtype == torch.float64
    # Each pass serves the round's draw once (the reference's shuffled
    # per-epoch loader over its sampled subset).
    for p in range(ROUNDS * PASSES):
        rows = torch.cat([
            b['rows'] for b in ours.batches[p * 2:(p + 1) * 2]])
        assert sorted(rows.tolist()) == sorted(
            ours.draws[p // PASSES].tolist())
    reference = run_reference(method, cfg, ours)
    assert len(reference['logs']) == len(ours.logs) == 8
    assert mismatches(ours, reference) == []
    # B really moved: each round's update is binary and changed bits.
    previous = ours.initial_codes
    for codes in ours.codes:
        assert set(codes.unique().tolist()) == {-1.0, 1.0}
        assert not torch.equal(codes, previous)
        previous = codes
    if method == 'a2net':  # the extra terms: off in round 0, on in round 1
        assert all(log['loss_rec'] == 0 for log in ours.logs[:4])
        assert all(log['loss_rec'] > 0 for log in ours.logs[4:])


@pytest.mark.parametrize('method, change', [
    ('a2net', dict(gamma=199.0)),
    ('agmh', dict(milestones=[])),
])
def test_replay_detects_a_changed_training_step(trained, method, change):
    """The comparison can fail: a slightly wrong weight or schedule in the
    replay shows up in the logged terms."""
    cfg, ours = trained[method]
    assert mismatches(ours, run_reference(method, cfg, ours, **change))
