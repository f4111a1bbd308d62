"""The one error type of a dataset's files: missing, malformed or broken.

Its message is a single line that a command-line tool prints as it is:
what is wrong (and, once :func:`~mmqueryopt.datasets.check_data` has placed
it, under which config key), where the dataset comes from and how to check a
whole tree.
"""
from typing import Optional

CHECK_TOOL = 'python tools/check_dataset.py'


class DatasetError(ValueError):
    """A dataset's files are missing, malformed or broken.

    Args:
        problem (str): What is wrong, naming the file (and line).
        source (str, optional): Where to get the dataset; when set, the
            message also says how to check a whole tree. Defaults to None.

    Attributes:
        key (str | None): The config key of the dataset (e.g.
            ``'train_dataloader.dataset.data_root'``), set by whoever knows
            it; the message starts with it.
        config (str | None): The config file, for the check command.
    """

    def __init__(self, problem: str, source: Optional[str] = None):
        super().__init__(problem, source)
        self.problem = problem
        self.source = source
        self.key: Optional[str] = None
        self.config: Optional[str] = None

    def __str__(self) -> str:
        parts = [self.problem if self.key is None else
                 f'{self.key}: {self.problem}']
        if self.source is not None:
            parts.append(self.source)
            parts.append(f'`{CHECK_TOOL} {self.config or "CONFIG"}` '
                         'checks a whole tree')
        # One line whatever the parts hold (a file name may hold a newline).
        return '; '.join(parts).replace('\n', ' ')


class DataNotFoundError(DatasetError, FileNotFoundError):
    """A data root, list file or split folder does not exist."""
