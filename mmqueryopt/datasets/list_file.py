"""Parsing of the plain-text list files that ship with the datasets.

All five layouts are lines of separated fields (``<image id> <class id>``,
``<class>/<image id>``, ...). Parsing them in one place gives every layout the
same checks and the same error format, ``<file>:<line>: <what was expected>``,
so a broken download or a hand-made subset can be fixed without reading code.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.fileio import get_text

from .errors import DataNotFoundError, DatasetError


class ListFileError(DatasetError):
    """A list file holds a line that does not fit its dataset's layout."""


class ListLine(NamedTuple):
    """One non-blank line of a list file, split into its fields.

    Attributes:
        path (str): The list file.
        lineno (int): 1-based line number in ``path``.
        fields (tuple[str]): The line's fields, stripped.
    """
    path: str
    lineno: int
    fields: Tuple[str, ...]

    @property
    def where(self) -> str:
        """str: ``<file>:<line>``, the place to cite in messages."""
        return f'{self.path}:{self.lineno}'

    def error(self, message: str) -> ListFileError:
        """Build an error that names this line.

        Args:
            message (str): What is wrong with the line.

        Returns:
            ListFileError: The error, ready to raise.
        """
        return ListFileError(f'{self.where}: {message}')

    def as_int(self, index: int, name: str) -> int:
        """Read one field as an integer.

        Args:
            index (int): Position of the field.
            name (str): The field's name, for the error message.

        Returns:
            int: The field's value.
        """
        try:
            return int(self.fields[index])
        except ValueError:
            raise self.error(f'expected an integer {name}, '
                             f'got {self.fields[index]!r}') from None


def read_list(path: str,
              fields: Sequence[str],
              sep: str = ' ',
              rest: Optional[int] = None) -> List[ListLine]:
    """Read a list file whose lines hold ``len(fields)`` separated fields.

    Blank lines are skipped, line numbers still count them.

    Args:
        path (str): The list file.
        fields (Sequence[str]): Field names in line order, e.g.
            ``('image id', 'class id')``; they appear in error messages.
        sep (str): The separator between fields. Defaults to ``' '``.
        rest (int, optional): Index of the one field that may itself hold
            ``sep`` (a name with spaces); the other fields are split off
            around it. None means every line must hold exactly
            ``len(fields)`` fields. Defaults to None.

    Returns:
        list[ListLine]: The lines in file order.
    """
    try:
        text = get_text(path)
    except FileNotFoundError:
        raise DataNotFoundError(
            f'List file not found: {path} (check data_root and that the '
            'dataset was extracted in its official layout)') from None
    expected = sep.join(f'<{name}>' for name in fields)
    lines = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        parts = _split(raw, sep, len(fields), rest)
        line = ListLine(path, lineno, tuple(part.strip() for part in parts))
        if len(parts) != len(fields) or not all(line.fields):
            raise line.error(f'expected {len(fields)} non-empty field(s) '
                             f'{expected!r}, got {raw!r}')
        lines.append(line)
    return lines


def read_table(path: str,
               fields: Sequence[str],
               sep: str = ' ',
               rest: Optional[int] = None) -> Dict[str, ListLine]:
    """Read a list file keyed by its first field, which must be unique.

    Args:
        path (str): The list file.
        fields (Sequence[str]): Field names, see :func:`read_list`.
        sep (str): The separator between fields. Defaults to ``' '``.
        rest (int, optional): See :func:`read_list`. Defaults to None.

    Returns:
        dict[str, ListLine]: Lines by their first field, in file order.
    """
    table: Dict[str, ListLine] = {}
    for line in read_list(path, fields, sep, rest):
        key = line.fields[0]
        if key in table:
            raise line.error(f'duplicate {fields[0]} {key!r}, first at line '
                             f'{table[key].lineno}')
        table[key] = line
    return table


def _split(text: str, sep: str, num_fields: int,
           rest: Optional[int]) -> List[str]:
    """Split ``text`` at ``sep``, merging the surplus into field ``rest``."""
    parts = text.split(sep)
    if rest is None or len(parts) <= num_fields:
        return parts
    after = num_fields - 1 - rest  # fields to the right of the merged one
    end = len(parts) - after
    return parts[:rest] + [sep.join(parts[rest:end])] + parts[end:]


def read_names(path: str, name: str) -> Dict[str, ListLine]:
    """Read a file of one class name a line; the line order is label order.

    Args:
        path (str): The names file (``variants.txt``, ``labels.txt``).
        name (str): What a line holds, for error messages.

    Returns:
        dict[str, ListLine]: Lines by name, in label order.
    """
    table = read_table(path, (name, ), rest=0)
    if not table:
        raise ListFileError(f'{path}: no {name} listed')
    return table
