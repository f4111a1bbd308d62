"""CodeMemoryDatabase: which row an image writes (its position in the
round's sample, its dataset index, or none), what stays between rounds,
the view's S and U against a plain transcription of the references'
memories, checkpoints and bad input."""
import pytest
import torch

from mmqueryopt.models.databases.code_memory_database import (
    CodeMemoryDatabase, CodeMemoryView)

# Ten training images of three classes.
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def memory(rows, width=3):
    database = CodeMemoryDatabase(rows=rows, code_width=width)
    database.prepare(LABELS)
    return database


class ReferenceMemory:
    """The references' U and Y (zeros, one-hot Y), written at ``ind``:
    DSH_Analysis hashnet.py's position in the sample, DeepHash-pytorch
    DPSH.py's dataset index."""

    def __init__(self, rows, width, classes=3):
        self.U = torch.zeros(rows, width, dtype=torch.float64)
        self.Y = torch.zeros(rows, classes, dtype=torch.float64)

    def step(self, codes, labels, ind):
        # (Codes drawn in float32, which the memory keeps.)
        self.U[ind] = codes
        self.Y[ind] = torch.eye(3, dtype=torch.float64)[labels]
        y = torch.eye(3, dtype=torch.float64)[labels]
        return (y @ self.Y.T > 0).double(), self.U.clone()


def test_round_rows_are_positions_in_the_sample_and_persist():
    database = memory('round')
    reference = ReferenceMemory(4, 3)
    generator = torch.Generator().manual_seed(0)
    previous = None
    for round_index, sampled in enumerate(
            (torch.tensor([7, 2, 9, 4]), torch.tensor([1, 7, 0, 5]))):
        database.start_round(round_index, 2, sampled)
        assert database.codes.shape == (4, 3)
        if previous is not None:
            # Never cleared: the new round starts with the last one's codes
            # and labels at the same positions.
            assert torch.equal(database.codes, previous[0])
            assert torch.equal(database.labels, previous[1])
        for order in (torch.tensor([2, 0]), torch.tensor([1, 3])):
            indices = sampled[order]
            codes = torch.rand(2, 3, generator=generator).double()
            database.record(indices, codes)
            view = database.view(indices, LABELS[indices], torch.float64)
            sim, memory_codes = reference.step(codes, LABELS[indices], order)
            assert isinstance(view, CodeMemoryView)
            assert torch.equal(view.similarity, sim)
            assert torch.equal(view.memory_codes.double(), memory_codes)
            assert view.round_index == round_index
            assert torch.equal(view.indices, indices)
        previous = database.codes.clone(), database.labels.clone()
    assert torch.equal(previous[1], LABELS[torch.tensor([1, 7, 0, 5])])


def test_unwritten_rows_are_dissimilar_with_zero_codes():
    database = memory('dataset')
    assert database.codes.shape == (10, 3)
    assert database.labels.tolist() == [-1] * 10
    indices = torch.tensor([0, 1])
    database.record(indices, torch.ones(2, 3))
    view = database.view(indices, LABELS[indices], torch.float32)
    # Image 0 (class 0) is similar to itself only: image 3, 6, 9 of class 0
    # are not written yet.
    assert view.similarity[0].tolist() == [1.0, 0.0] + [0.0] * 8
    assert view.memory_codes[2:].abs().sum() == 0


def test_dataset_rows_match_dpsh_memory():
    database = memory('dataset', width=4)
    reference = ReferenceMemory(10, 4)
    generator = torch.Generator().manual_seed(1)
    for indices in (torch.tensor([3, 8, 1]), torch.tensor([8, 0, 9])):
        codes = torch.randn(3, 4, generator=generator).double()
        database.record(indices, codes)
        view = database.view(indices, LABELS[indices], torch.float64)
        sim, memory_codes = reference.step(codes, LABELS[indices], indices)
        assert torch.equal(view.similarity, sim)
        assert torch.equal(view.memory_codes.double(), memory_codes)


def test_batch_rows_pair_the_batch_with_itself():
    database = memory('batch')
    indices = torch.tensor([0, 3, 4])
    database.record(indices, torch.ones(3, 3))
    view = database.view(indices, LABELS[indices], torch.float32)
    assert view.memory_codes is None
    assert view.similarity.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert database.codes.numel() == 0
    assert database.retrieval_codes(3) is None


def test_multi_hot_labels():
    database = CodeMemoryDatabase(rows='dataset', code_width=2)
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1]])
    database.prepare(labels)
    assert database.labels.tolist() == [[0, 0, 0]] * 3
    database.record(torch.tensor([0, 1, 2]), torch.zeros(3, 2))
    view = database.view(torch.tensor([2]), labels[2:], torch.float32)
    assert view.similarity.tolist() == [[1.0, 0.0, 1.0]]


def test_checkpoint_round_trip_and_size_checks():
    database = memory('round')
    database.start_round(0, 2, torch.tensor([5, 1, 0]))
    database.record(torch.tensor([1]), torch.full((1, 3), 0.5))
    state = database.state_dict()
    assert set(state) == {'codes', 'labels'}
    loaded = CodeMemoryDatabase(rows='round', code_width=3)
    loaded.load_state_dict(state)
    loaded.prepare(LABELS)
    loaded.start_round(1, 2, torch.tensor([2, 3, 4]))
    assert torch.equal(loaded.codes, database.codes)
    assert loaded.labels.tolist() == [-1, 1, -1]
    with pytest.raises(ValueError, match='num_samples has 4 images'):
        loaded.start_round(2, 3, torch.tensor([2, 3, 4, 5]))
    with pytest.raises(ValueError, match='another code length'):
        CodeMemoryDatabase(code_width=5).load_state_dict(state)
    dataset_rows = CodeMemoryDatabase(rows='dataset', code_width=3)
    dataset_rows.load_state_dict(memory('dataset').state_dict())
    with pytest.raises(ValueError, match='the training set has 4 images'):
        dataset_rows.prepare(LABELS[:4])


def test_bad_input():
    with pytest.raises(ValueError, match='model.database.rows'):
        CodeMemoryDatabase(rows='epoch')
    with pytest.raises(RuntimeError, match='ADSHRoundHook'):
        CodeMemoryDatabase(rows='dataset', code_width=2).record(
            torch.tensor([0]), torch.zeros(1, 2))
    database = memory('round')
    database.start_round(0, 1, torch.tensor([1, 2]))
    with pytest.raises(IndexError, match="not in this round's sample"):
        database.record(torch.tensor([3]), torch.zeros(1, 3))
