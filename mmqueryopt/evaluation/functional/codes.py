"""Binary codes: the sign rule, checking, one form, packing.

:func:`sign` is the one rule that turns real values into codes (ties to
+1). Everything downstream works on ``{-1, +1}`` float32 codes
(:func:`sign_codes`; the Hamming distance is then an exact matrix product)
on the device the codes came on; :func:`pack_codes` packs them into the
rows of a codes file.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]
# Rows converted per step when packing codes: bounds the float32 {-1, +1}
# copy that sign_codes makes to a few MiB whatever the gallery size.
_PACK_ROWS = 1 << 16


def sign(values: Union[np.ndarray, torch.Tensor]
         ) -> Union[np.ndarray, torch.Tensor]:
    """The binary code of real values: +1 where ``values >= 0`` (ties at 0
    go to +1, so a code never has a 0), else -1.

    The rule of every code in the package: a model's ``binarize``, ADSH's
    code update, encoding, and the analyses of relaxed codes. NaN gives -1.

    Args:
        values (np.ndarray | torch.Tensor): Real values, any shape.

    Returns:
        np.ndarray | torch.Tensor: Of the same type, shape, dtype (and
        device) as ``values``, holding -1 and 1.
    """
    if isinstance(values, torch.Tensor):
        return torch.where(values >= 0, 1, -1).to(values.dtype)
    values = np.asarray(values)
    return np.where(values >= 0, 1, -1).astype(values.dtype, copy=False)


def _shape(array: ArrayLike) -> tuple:
    return tuple(array.shape) if hasattr(array, 'shape') else np.shape(array)


def as_tensor(array: ArrayLike, name: str) -> torch.Tensor:
    """``array`` as a tensor, sharing memory with numpy input."""
    if isinstance(array, torch.Tensor):
        return array
    array = np.asarray(array)
    if array.dtype == object:
        raise ValueError(f'{name} must be a numeric array; got dtype object '
                         f'with shape {array.shape}')
    return torch.from_numpy(np.ascontiguousarray(array))


def _unpack_bits(packed: torch.Tensor, name: str, nbits: int) -> torch.Tensor:
    num_bytes = -(-nbits // 8)
    if (packed.dtype != torch.uint8 or packed.ndim != 2
            or packed.shape[1] != num_bytes):
        raise ValueError(
            f'{name}: packed codes with nbits={nbits} must be a uint8 array '
            f'of shape (N, {num_bytes}) as written by np.packbits(bits, '
            f'axis=1); got dtype {packed.dtype} and shape '
            f'{tuple(packed.shape)}')
    # Big-endian bit order within each byte, as np.packbits writes by default.
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(packed.shape[0], -1)[:, :nbits].bool()


def sign_codes(codes: ArrayLike,
               name: str,
               nbits: Optional[int] = None) -> torch.Tensor:
    """Turn binary codes into ``{-1, +1}`` float32 codes on the same device.

    Args:
        codes (np.ndarray | torch.Tensor): ``(N, nbits)`` codes in ``{-1, +1}``
            or ``{0, 1}`` (any numeric or bool dtype), or, when ``nbits`` is
            given, ``(N, ceil(nbits / 8))`` uint8 bytes packed big-endian as by
            ``np.packbits(bits, axis=1)`` (padding bits are ignored).
        name (str): Argument name used in error messages.
        nbits (int, optional): Code length of packed codes. Defaults to None
            (codes are not packed).

    Returns:
        torch.Tensor: ``(N, nbits)`` float32 tensor of ``-1.`` and ``1.``.
    """
    codes = as_tensor(codes, name)
    if nbits is not None:
        if not isinstance(nbits, int) or nbits < 1:
            raise ValueError(f'nbits must be a positive int; got {nbits!r}')
        bits = _unpack_bits(codes, name, nbits)
    elif codes.ndim != 2:
        raise ValueError(f'{name} must have shape (N, nbits); got shape '
                         f'{tuple(codes.shape)}')
    elif codes.dtype == torch.bool:
        bits = codes
    else:
        bits = codes == 1
        # 1 means "bit set" in both conventions, so each array may use either
        # one on its own; only a mix of -1 and 0 is ambiguous.
        plus_minus = (bits | (codes == -1)).all()
        if not plus_minus and not (bits | (codes == 0)).all():
            values = codes.unique()[:8].tolist()
            raise ValueError(
                f'{name} must hold binary codes in {{-1, +1}} or in {{0, 1}} '
                f'(or packed uint8 bytes with nbits=...); got values '
                f'{values} in an array of shape {tuple(codes.shape)}')
    if bits.shape[0] == 0:
        raise ValueError(f'{name} is empty: shape {tuple(codes.shape)}')
    return bits.float() * 2 - 1


def prepare_codes(
        query_codes: ArrayLike,
        database_codes: ArrayLike,
        nbits: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Check both code arrays and return them as ``{-1, +1}`` float32.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(Q, nbits)`` and ``(D, nbits)``
        codes on the device the codes are on.
    """
    query = sign_codes(query_codes, 'query_codes', nbits)
    database = sign_codes(database_codes, 'database_codes', nbits)
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            f'query_codes and database_codes must have the same code length; '
            f'got shapes {_shape(query_codes)} and {_shape(database_codes)}')
    if query.device != database.device:
        raise ValueError(
            f'query_codes and database_codes must be on the same device; got '
            f'{query.device} and {database.device}')
    return query, database


def pack_codes(codes: ArrayLike,
               name: str = 'codes',
               nbits: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """Check binary codes and pack them into ``np.packbits`` rows.

    Args:
        codes (np.ndarray | torch.Tensor): ``(N, nbits)`` codes in
            ``{-1, +1}`` or ``{0, 1}``, or, with ``nbits``, ``(N,
            ceil(nbits / 8))`` uint8 rows of ``np.packbits(bits, axis=1)``
            (as :func:`sign_codes` reads them).
        name (str): Argument name used in error messages.
        nbits (int, optional): Code length of packed codes. Defaults to None
            (codes are not packed).

    Returns:
        tuple[np.ndarray, int]: ``(N, ceil(nbits / 8))`` uint8 packed rows
        (padding bits 0) and the code length.
    """
    codes = as_tensor(codes, name)
    num_rows = len(codes) if codes.ndim else 0
    packed = None
    # One output array, made at the first chunk: a list of chunk rows, kept
    # between the freed temporaries of each chunk, fragments the heap (360 MiB
    # kept after packing 10M codes, against 57 MiB of codes).
    for start in range(0, max(num_rows, 1), _PACK_ROWS):
        # sign_codes checks the values (and the shape of packed rows).
        signs = sign_codes(
            codes[start:start + _PACK_ROWS] if num_rows else codes, name,
            nbits)
        rows = np.packbits((signs > 0).cpu().numpy(), axis=1)
        if packed is None:
            packed = np.empty((num_rows, rows.shape[1]), np.uint8)
        packed[start:start + len(rows)] = rows
    return packed, signs.shape[1]
