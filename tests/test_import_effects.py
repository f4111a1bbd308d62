"""Importing mmqueryopt registers modules and changes nothing else in the
process; the workarounds of mmqueryopt.compat act where they are applied."""
import subprocess
import sys

from conftest import REPO

# Run in a fresh interpreter: this test process has imported mmqueryopt and
# run runners long ago. MMPretrain is imported first, so that its own
# import-time effects are not counted as ours.
PROBE = r'''
import warnings
import mmpretrain  # noqa: F401
import torch
from mmengine.logging import HistoryBuffer, MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

def state():
    return (list(warnings.filters), dict(CheckpointLoader._schemes),
            HistoryBuffer in torch.serialization.get_safe_globals())

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    before = state()
    import mmqueryopt
    after = state()
print('filters', before[0] == after[0])
print('schemes', before[1] == after[1])
print('safe_globals', after[2])
print('warned', [str(w.message) for w in caught])

from mmqueryopt.compat import route_local_checkpoint_loading
from mmqueryopt.fileio import load_from_local
route_local_checkpoint_loading(load_from_local)
print('routed', CheckpointLoader._schemes[''] is load_from_local)
'''


def test_import_registers_only():
    result = subprocess.run([sys.executable, '-c', PROBE], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines == [
        'filters True', 'schemes True', 'safe_globals False', 'warned []',
        'routed True'
    ], result.stdout + result.stderr[-2000:]
