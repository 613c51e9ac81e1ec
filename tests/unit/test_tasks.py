"""Tasks: variations put data and noise where they belong; generated tasks are right; the
downloaded datasets load through the real keras.datasets loaders from tiny files written in
the real cache formats, and a missing file is named with the command that fetches it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from simulators.tasks import disk_cache, task_module
from simulators.tasks.base import TaskData
from simulators.tasks.group import elements, multiplication_table
from simulators.tasks.keras_cache import DatasetMissing
from simulators.tasks.keras_datasets import KerasDataset
from simulators.tasks.transforms import apply_variation, data_positions, permutation
from tests.helpers.keras_cache import write_cache
from tests.helpers.runs import tiny_spec_dict


def ramp_task(steps=10) -> TaskData:
    """Values 1..steps (never in the noise range [0, 1)), so data and noise are told apart."""
    x = np.tile(np.arange(1, steps + 1, dtype="float32"), (4, 1))[..., None]
    return TaskData(x, np.zeros(4), x + 100, np.zeros(4), objective="regression")


@pytest.mark.parametrize("orientation", ["post", "uniform"])
def test_padding_puts_data_and_noise_where_they_belong(orientation):
    padded = apply_variation(ramp_task(), permute=False, pad=25, orientation=orientation)
    assert padded.x_train.shape == (4, 35, 1)
    positions = data_positions(10, 25, orientation)
    np.testing.assert_array_equal(padded.x_train[:, positions, 0], np.tile(np.arange(1, 11), (4, 1)))
    np.testing.assert_array_equal(padded.x_val[:, positions, 0], np.tile(np.arange(101, 111), (4, 1)))
    noise = np.delete(padded.x_train, positions, axis=1)
    assert noise.shape[1] == 25 and (noise >= 0).all() and (noise < 1).all()
    if orientation == "post":
        np.testing.assert_array_equal(positions, np.arange(10))
    else:  # spread evenly: gaps between data steps differ by at most one
        gaps = np.diff(positions)
        assert positions[0] == 0 and gaps.max() - gaps.min() <= 1 and positions[-1] >= 30


def test_text_padding_uses_word_indices():
    tokens = np.arange(1, 9, dtype="int32").reshape(2, 4)
    text = TaskData(tokens, np.zeros(2), tokens, np.zeros(2), objective="binary", n_classes=2, vocabulary=50)
    padded = apply_variation(text, permute=False, pad=6, orientation="post")
    noise = padded.x_train[:, 4:]
    assert padded.x_train.dtype == np.int32 and ((noise >= 1) & (noise < 50)).all()


def test_permutation_is_fixed_and_shared_by_train_and_validation():
    np.testing.assert_array_equal(permutation(64), permutation(64))
    assert not np.array_equal(permutation(64), np.arange(64))
    permuted = apply_variation(ramp_task(), permute=True, pad=0, orientation="none")
    np.testing.assert_array_equal(permuted.x_train[0, :, 0], permutation(10) + 1)
    np.testing.assert_array_equal(permuted.x_val[0, :, 0], permutation(10) + 101)


def test_pad_and_orientation_must_agree():
    with pytest.raises(ValueError, match="pad must be 0 exactly when orientation is none"):
        apply_variation(ramp_task(), permute=False, pad=5, orientation="none")


def test_copy_task_shows_the_symbols_then_asks_for_them():
    module = task_module("copy")
    options = module.Options(symbols=4, length=3, delay=5, train_samples=6, val_samples=2)
    data = module.load(options)
    assert data.x_train.shape == (6, 3 + 5 + 1, 5) and data.y_train.shape == (6, 3) and data.target_steps == 3
    np.testing.assert_array_equal(data.x_train[:, :3, :4].argmax(-1), data.y_train)
    assert data.x_train[:, 3:-1].sum() == 0 and (data.x_train[:, -1, 4] == 1).all()


@pytest.mark.parametrize("group, degree, order", [("cyclic", 5, 5), ("dihedral", 4, 8), ("symmetric", 5, 120)])
def test_group_tables_are_groups(group, degree, order):
    table = multiplication_table(group, degree)
    assert table.shape == (order, order)
    np.testing.assert_array_equal(table[0], np.arange(order))  # identity first
    for row in table:  # Latin square: every product unique
        assert sorted(row) == list(range(order))
    a, b, c = np.random.default_rng(0).integers(0, order, size=(3, 50))
    np.testing.assert_array_equal(table[table[a, b], c], table[a, table[b, c]])
    abelian = (table == table.T).all()
    assert abelian == (group == "cyclic")


def numpy_prefix_products(group, degree, words) -> np.ndarray:
    """The index of g_1 ... g_t at every step, composing the permutations themselves:
    (a b)(i) = a(b(i))."""
    members = np.array(elements(group, degree))
    index = {tuple(member): position for position, member in enumerate(members)}
    prefix = np.tile(np.arange(degree), (len(words), 1))
    labels = np.empty_like(words)
    for step in range(words.shape[1]):
        prefix = np.take_along_axis(prefix, members[words[:, step]], axis=1)
        labels[:, step] = [index[tuple(row)] for row in prefix]
    return labels


@pytest.mark.parametrize("group, degree", [("cyclic", 7), ("dihedral", 4), ("symmetric", 5)])
def test_group_labels_are_the_running_products(group, degree):
    module = task_module("group")
    options = module.Options(group=group, degree=degree, length=9, train_samples=20, val_samples=5)
    data = module.load(options)
    words = data.x_train.argmax(-1)
    assert data.y_train.shape == (20, 9) and data.per_step and data.target_steps == 1
    np.testing.assert_array_equal(data.y_train, numpy_prefix_products(group, degree, words))
    np.testing.assert_array_equal(data.y_val, numpy_prefix_products(group, degree, data.x_val.argmax(-1)))
    if group == "cyclic":  # rotations add up: rotation by k maps 0 -> k
        shifts = np.array([member[0] for member in elements("cyclic", 7)])
        np.testing.assert_array_equal(data.y_train, np.cumsum(shifts[words], axis=1) % 7)
    final = module.load(options.model_copy(update={"labels": "final"}))
    np.testing.assert_array_equal(final.y_train, data.y_train[:, -1])
    assert not final.per_step


def test_a_task_labelled_at_every_step_is_neither_permuted_nor_padded():
    module = task_module("group")
    data = module.load(module.Options(length=4, train_samples=2, val_samples=2))
    for variation in [(True, 0, "none"), (False, 3, "post")]:
        with pytest.raises(ValueError, match="takes no permute or pad"):
            apply_variation(data, *variation)


# --- the real keras.datasets loaders on tiny files in the real cache formats ---------------



def test_image_datasets_load_pixel_by_pixel(tmp_path):
    images = write_cache(tmp_path)
    for name in ("mnist", "fashion_mnist"):
        module = task_module(name)
        data = module.load(module.Options(), tmp_path)
        assert data.x_train.shape == (6, 784, 1) and data.x_val.shape == (4, 784, 1)
        np.testing.assert_allclose(data.x_train[:, :, 0], images["train"].reshape(6, 784) / 255, atol=1e-6)
        np.testing.assert_array_equal(data.y_val, np.arange(4))
        assert data.n_classes == 10 and data.x_train.dtype == np.float32
    cifar = task_module("cifar10")
    data = cifar.load(cifar.Options(train_samples=3, val_samples=2), tmp_path)
    assert data.x_train.shape == (3, 1024, 3) and data.x_val.shape == (2, 1024, 3)
    assert data.x_train.max() == 1.0 and (data.y_train == 3).all()


def test_text_datasets_load_as_padded_word_indices(tmp_path):
    write_cache(tmp_path)
    imdb = task_module("imdb")
    data = imdb.load(imdb.Options(vocabulary=100, length=6), tmp_path)
    assert data.x_train.shape == (4, 6) and data.objective == "binary" and data.vocabulary == 100
    assert data.x_train.max() < 100  # rare words (30000) became the OOV index
    assert (data.x_train[:, 0] == 0).any()  # short reviews are zero-padded in front
    reuters = task_module("reuters")
    data = reuters.load(reuters.Options(length=5), tmp_path)
    assert data.x_train.shape == (8, 5) and data.x_val.shape == (2, 5) and data.n_classes == 46


def test_cached_file_is_read_not_replaced(tmp_path):
    """Keras would delete a cached file whose hash differs and download it again: not here."""
    write_cache(tmp_path)
    before = (tmp_path / "mnist.npz").read_bytes()
    task_module("mnist").load(task_module("mnist").Options(), tmp_path)
    assert (tmp_path / "mnist.npz").read_bytes() == before


def test_missing_file_names_the_file_and_the_fetch_command(tmp_path):
    module = task_module("fashion_mnist")
    problems = module.missing_files(tmp_path / "datasets")
    assert len(problems) == 4 and "train-images-idx3-ubyte.gz" in "".join(problems)
    assert f"KERAS_HOME={tmp_path} python -c 'import keras; keras.datasets.fashion_mnist.load_data()'" in problems[0]
    with pytest.raises(DatasetMissing, match="fashion-mnist/train-labels-idx1-ubyte.gz"):
        module.load(module.Options(), tmp_path / "datasets")


def test_ensemble_with_a_missing_dataset_stops_before_any_worker(tmp_path, capsys):
    from run_ensemble import main

    spec = tiny_spec_dict(simulator={"data_dir": str(tmp_path / "empty")})
    spec["space"]["choices"]["dataset"] = ["digits", "mnist"]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "mnist.npz" in error and "keras.datasets.mnist.load_data()" in error
    assert not (tmp_path / "run").exists()


# --- prepared variants on disk: what process-isolated trainings share ------------------------

@pytest.fixture
def counted_loads(tmp_path, monkeypatch):
    """``load(**variant)`` as a new trainer process would (empty in-memory cache) from tiny MNIST
    files; ``load.calls`` counts the times the real loader ran."""
    from simulators.options import TrainingOptions
    from simulators.training import _cached_task, load_task

    write_cache(tmp_path)
    real_load = KerasDataset.load

    def counting(self, options, data_dir=None):
        load.calls += 1
        return real_load(self, options, data_dir)

    def load(tasks=None, **variant) -> TaskData:
        _cached_task.cache_clear()
        options = TrainingOptions(data_dir=tmp_path, task_cache=tmp_path / "prepared", tasks=tasks or {})
        return load_task({"dataset": "mnist", "permute": False, "pad": 0, "orientation": "none", **variant}, options)

    load.calls = 0
    monkeypatch.setattr(KerasDataset, "load", counting)
    yield load
    _cached_task.cache_clear()


def entries(directory) -> list:
    return sorted(path for path in directory.iterdir() if not path.name.startswith("."))


def test_second_load_reads_the_prepared_variant_from_disk(counted_loads, tmp_path):
    first = counted_loads(permute=True, pad=30, orientation="uniform")
    second = counted_loads(permute=True, pad=30, orientation="uniform")
    assert counted_loads.calls == 1 and len(entries(tmp_path / "prepared")) == 1
    assert isinstance(second.x_train, np.memmap) and second.x_train.shape == (6, 814, 1)
    for name in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert (second.objective, second.n_classes, second.target_steps) == ("classification", 10, 1)


def test_variants_and_options_do_not_share_an_entry(counted_loads, tmp_path):
    plain = counted_loads()
    variants = [dict(permute=True), dict(pad=5, orientation="post"), dict(pad=5, orientation="uniform"),
                dict(tasks={"mnist": {"train_samples": 3}})]
    for variant in variants:
        data = counted_loads(**variant)
        expected = apply_variation(plain, variant.get("permute", False), variant.get("pad", 0),
                                   variant.get("orientation", "none"))
        n = len(data.x_train)
        np.testing.assert_array_equal(data.x_train, expected.x_train[:n])
    assert counted_loads.calls == 5 and len(entries(tmp_path / "prepared")) == 5


def test_a_replaced_dataset_file_is_prepared_again(counted_loads, tmp_path):
    before = counted_loads()
    images = np.load(tmp_path / "mnist.npz")
    np.savez(tmp_path / "mnist.npz", **{**images, "x_train": 255 - images["x_train"]})
    after = counted_loads()
    assert counted_loads.calls == 2
    np.testing.assert_allclose(after.x_train, 1 - before.x_train, atol=1e-6)


@pytest.mark.parametrize("damage", ["truncated array", "garbled meta", "missing array"])
def test_a_damaged_entry_is_rebuilt_not_trusted(counted_loads, tmp_path, damage):
    good = counted_loads(pad=3, orientation="post")
    (entry,) = entries(tmp_path / "prepared")
    if damage == "truncated array":
        (entry / "x_train.npy").write_bytes((entry / "x_train.npy").read_bytes()[:200])
    elif damage == "garbled meta":
        (entry / disk_cache.META_FILE).write_text("{not json")
    else:
        (entry / "y_val.npy").unlink()
    rebuilt = counted_loads(pad=3, orientation="post")
    np.testing.assert_array_equal(rebuilt.x_train, good.x_train)
    assert counted_loads.calls == 2
    counted_loads(pad=3, orientation="post")  # the rebuilt entry is whole again
    assert counted_loads.calls == 2 and [path.name for path in (tmp_path / "prepared").iterdir()] == [entry.name]


def test_a_concurrent_writer_that_lost_the_race_leaves_the_winner(tmp_path):
    data = TaskData(np.ones((2, 3, 1)), np.zeros(2), np.ones((1, 3, 1)), np.zeros(1), objective="regression")
    entry = tmp_path / "task-0"
    disk_cache.write(entry, data)
    disk_cache.write(entry, data.with_inputs(data.x_train * 2, data.x_val * 2))  # rename onto the winner fails
    assert disk_cache.read(entry).x_train.max() == 1 and [p.name for p in tmp_path.iterdir()] == ["task-0"]
    expected = [*(f"{a}.npy" for a in disk_cache.ARRAYS), disk_cache.META_FILE]
    assert sorted(p.name for p in entry.iterdir()) == sorted(expected)


def test_an_unwritable_cache_leaves_the_task_uncached_not_failed(tmp_path):
    data = TaskData(np.ones((2, 3, 1)), np.zeros(2), np.ones((1, 3, 1)), np.zeros(1), objective="regression")
    (tmp_path / "not-a-directory").write_text("")  # e.g. a read-only or full file system: mkdir fails
    entry = tmp_path / "not-a-directory" / "task-0"
    assert disk_cache.cached(entry, lambda: data) is data
    assert (tmp_path / "not-a-directory").is_file()
