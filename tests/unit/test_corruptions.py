"""Image corruptions: each elementary one does what its description says and is the same for the
same seed; compositions apply left to right (order matters where it must, and only there); the
task pipeline corrupts training and validation images separately, caches the variant under a key
with the corruption and its seed, and refuses tasks without images before any worker starts."""

from __future__ import annotations

import numpy as np
import pytest

from generators.points import make_point
from hypers.fields import defaults, validate_choice_value
from hypers.space import SearchSpace
from simulators.tasks import corruptions, disk_cache
from simulators.tasks.base import TaskData
from simulators.tasks.corruptions import ELEMENTARY, corrupt_images, corrupt_task, parse

SIZE = 32
CENTRE = (SIZE - 1) / 2


def blobs(count: int = 12, row: float = CENTRE - 8, col: float = CENTRE) -> np.ndarray:
    """Smooth Gaussian blobs 8 pixels above the centre: their centre of mass survives resampling."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    blob = np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * 1.5**2))
    return np.repeat(blob[None, ..., None], count, axis=0).astype("float32")


def centres(images: np.ndarray) -> np.ndarray:
    """(row, col) centre of mass of each image, relative to the image centre."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    mass = images[..., 0].sum(axis=(1, 2))
    return np.stack([(images[..., 0] * rows).sum(axis=(1, 2)) / mass,
                     (images[..., 0] * cols).sum(axis=(1, 2)) / mass], -1) - CENTRE


def digits_like(count: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize("name", list(ELEMENTARY))
def test_each_corruption_is_the_same_for_the_same_seed_and_stays_an_image(name):
    images = digits_like()
    once = corrupt_images(images, name, seed=3, split=0)
    np.testing.assert_array_equal(once, corrupt_images(images, name, seed=3, split=0))
    assert once.shape == images.shape and once.dtype == images.dtype
    assert once.min() >= 0 and once.max() <= 1 and not np.array_equal(once, images)
    if name not in ("flip", "invert"):  # the ones that draw magnitudes draw other ones for another seed or split
        assert not np.array_equal(once, corrupt_images(images, name, seed=4, split=0))
        assert not np.array_equal(once, corrupt_images(images, name, seed=3, split=1))


def test_rotate_turns_about_the_centre_by_15_to_45_degrees():
    before, after = centres(blobs()), centres(corrupt_images(blobs(), "rotate", 0, 0))
    np.testing.assert_allclose(np.hypot(*after.T), np.hypot(*before.T), atol=0.1)
    turned = np.degrees(np.arctan2(after[:, 1], after[:, 0]) - np.arctan2(before[:, 1], before[:, 0]))
    turned = np.abs((turned + 180) % 360 - 180)
    assert ((turned > 14.9) & (turned < 45.1)).all() and np.ptp(turned) > 5  # drawn per image


def test_translate_shifts_by_a_tenth_to_a_fifth_of_the_size():
    images = blobs(row=CENTRE, col=CENTRE)
    moved = np.hypot(*(centres(corrupt_images(images, "translate", 0, 0)) - centres(images)).T)
    assert ((moved > 0.1 * SIZE - 0.1) & (moved < 0.2 * SIZE + 0.1)).all()


def test_scale_shrinks_towards_the_centre():
    ratio = np.hypot(*centres(corrupt_images(blobs(), "scale", 0, 0)).T) / np.hypot(*centres(blobs()).T)
    assert ((ratio > 0.59) & (ratio < 0.81)).all()


def test_shear_moves_columns_in_proportion_to_the_row():
    before, after = centres(blobs()), centres(corrupt_images(blobs(), "shear", 0, 0))
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=0.05)  # rows stay
    factor = np.abs(after[:, 1] - before[:, 1]) / np.abs(before[:, 0])
    assert ((factor > 0.19) & (factor < 0.51)).all()


def test_flip_and_invert_are_exact():
    images = digits_like()
    np.testing.assert_array_equal(corrupt_images(images, "flip", 0, 0), images[:, :, ::-1])
    np.testing.assert_allclose(corrupt_images(images, "invert", 0, 0), 1 - images)


def test_noise_adds_gaussian_noise_of_std_0_1_to_0_2():
    grey = np.full((10, SIZE, SIZE, 1), 0.5, dtype="float32")
    noisy = corrupt_images(grey, "noise", 0, 0)
    deviations = noisy.std(axis=(1, 2, 3))
    assert ((deviations > 0.09) & (deviations < 0.21)).all()
    np.testing.assert_allclose(noisy.mean(axis=(1, 2, 3)), 0.5, atol=0.02)


def test_blur_spreads_a_point_by_sigma_0_05_to_0_08_of_the_size():
    point = np.zeros((10, SIZE, SIZE, 1), dtype="float32")
    point[:, SIZE // 2, SIZE // 2] = 1.0
    blurred = corrupt_images(point, "blur", 0, 0)
    np.testing.assert_allclose(blurred.sum(axis=(1, 2, 3)), 1.0, atol=1e-4)  # mass kept
    rows = np.arange(SIZE)[None, :, None]
    sigma = np.sqrt((blurred[..., 0] * (rows - SIZE // 2) ** 2).sum(axis=(1, 2)))
    assert ((sigma > 0.05 * SIZE - 0.05) & (sigma < 0.08 * SIZE + 0.05)).all()
    flat = np.full((2, 8, 8, 1), 0.3, dtype="float32")
    np.testing.assert_allclose(corrupt_images(flat, "blur", 0, 0), flat, atol=1e-6)


def test_contrast_scales_deviations_from_the_mean_by_0_3_to_0_5():
    images = digits_like(20)
    low = corrupt_images(images, "contrast", 0, 0)
    np.testing.assert_allclose(low.mean(axis=(1, 2, 3)), images.mean(axis=(1, 2, 3)), atol=1e-6)
    ratio = low.std(axis=(1, 2, 3)) / images.std(axis=(1, 2, 3))
    assert ((ratio > 0.3 - 1e-5) & (ratio < 0.5 + 1e-5)).all()


def test_a_composition_is_its_corruptions_left_to_right():
    images = digits_like()
    step_by_step = corrupt_images(corrupt_images(images, "rotate", 5, 0), "noise", 5, 0)
    np.testing.assert_array_equal(corrupt_images(images, "rotate+noise", 5, 0), step_by_step)
    twice = corrupt_images(images, "noise+noise", 5, 0)  # a repeated corruption draws anew
    assert not np.array_equal(twice, corrupt_images(corrupt_images(images, "noise", 5, 0), "noise", 5, 0))


@pytest.mark.parametrize("first, second", [("rotate", "translate"), ("noise", "blur"), ("noise", "invert"),
                                           ("shear", "flip"), ("scale", "translate")])
def test_order_matters_where_the_corruptions_do_not_commute(first, second):
    images = blobs()
    a_then_b = corrupt_images(images, f"{first}+{second}", 0, 0)
    b_then_a = corrupt_images(images, f"{second}+{first}", 0, 0)
    assert np.abs(a_then_b - b_then_a).max() > 0.1


@pytest.mark.parametrize("first, second", [("contrast", "invert"), ("invert", "flip"), ("blur", "invert")])
def test_order_does_not_matter_where_they_commute(first, second):
    images = digits_like()
    np.testing.assert_allclose(corrupt_images(images, f"{first}+{second}", 0, 0),
                               corrupt_images(images, f"{second}+{first}", 0, 0), atol=1e-6)


@pytest.mark.parametrize("bad", ["rotat", "rotate+", "rotate blur", "none+rotate", "", 3])
def test_a_bad_composition_names_the_field_and_the_corruptions(bad):
    with pytest.raises(ValueError, match=r"'corruption': .* is not a corruption.*rotate, shear.*noise\+blur"):
        validate_choice_value("corruption", bad)
    assert parse("none") == () and parse("noise+blur") == ("noise", "blur")


def test_the_task_is_corrupted_as_images_training_and_validation_apart():
    images = np.random.default_rng(1).uniform(0, 1, (6, 4, 5, 3)).astype("float32")
    x = images.reshape(6, 20, 3)  # row by row, channels as features (cifar10's layout)
    data = TaskData(x, np.zeros(6), x.copy(), np.zeros(6), objective="classification", n_classes=2)
    corrupted = corrupt_task(data, (4, 5, 3), "flip", "invert", seed=0)
    np.testing.assert_array_equal(corrupted.x_train, images[:, :, ::-1].reshape(6, 20, 3))
    np.testing.assert_allclose(corrupted.x_val, 1 - x)
    assert (corrupted.corruption, corrupted.val_corruption) == ("flip", "invert")
    assert corrupt_task(data, None, "none", "none", seed=0) is data
    with pytest.raises(ValueError, match="not an image task"):
        corrupt_task(data, None, "rotate", "rotate", seed=0)
    with pytest.raises(ValueError, match="does not match"):
        corrupt_task(data, (5, 4, 1), "rotate", "rotate", seed=0)


def test_corrupted_variants_are_cached_under_their_corruption_and_seed(tmp_path):
    from simulators.options import TrainingOptions
    from simulators.tasks import task_module
    from simulators.training import _cached_task, load_task

    point = {"dataset": "digits", "permute": False, "pad": 0, "orientation": "none", "corruption": "rotate",
             "val_corruption": "blur"}
    options = TrainingOptions(task_cache=tmp_path, tasks={"digits": {"train_samples": 100}})
    _cached_task.cache_clear()
    data = load_task(point, options)
    digits = task_module("digits")
    expected = corrupt_task(digits.load(digits.Options(train_samples=100)), (8, 8, 1), "rotate", "blur", seed=0)
    np.testing.assert_array_equal(data.x_train, expected.x_train)
    np.testing.assert_array_equal(data.x_val, expected.x_val)
    for variant in ({"corruption": "none", "val_corruption": "none"}, {"val_corruption": "rotate"}):
        load_task({**point, **variant}, options)
    load_task(point, options.model_copy(update={"corruption_seed": 1}))
    entries = sorted(path.name for path in tmp_path.iterdir())
    assert len(entries) == 4, entries  # each corruption pair and seed its own entry
    _cached_task.cache_clear()
    again = load_task(point, options)  # read back from disk: the same images, and what they are
    assert isinstance(again.x_train, np.memmap) and (again.corruption, again.val_corruption) == ("rotate", "blur")
    np.testing.assert_array_equal(again.x_val, expected.x_val)
    assert corruptions.__file__ in [str(path) for path in disk_cache.source_files(digits, None)]
    _cached_task.cache_clear()


def test_uncorrupted_points_keep_their_identifiers_and_held_out_twins_share_a_seed():
    configuration = SearchSpace.complete({"architecture": "rnn", "dataset": "digits"})
    before_corruptions = "5e8f693b-b77e-55da-83e7-7fc47d7ad4a9"
    assert make_point(configuration, 0, 0)["identifier"] == before_corruptions
    seen = SearchSpace.complete({"architecture": "rnn", "dataset": "digits", "corruption": "rotate"})
    assert seen["val_corruption"] == "rotate"  # left out: validated on what it trains on
    held_out = {**seen, "val_corruption": "translate+rotate"}
    seen_point, held_out_point = make_point(seen, 1, 0), make_point(held_out, 1, 0)
    assert seen_point["identifier"] != held_out_point["identifier"]
    assert seen_point["seed"] == held_out_point["seed"]
    assert make_point({**defaults(), **seen, "corruption": "translate"}, 1, 0)["seed"] != seen_point["seed"]


def test_a_spec_that_corrupts_a_task_without_images_fails_before_any_worker(write_spec):
    from ensembles.loading import SpecError, load_spec

    path = write_spec(space={"choices": {"architecture": ["rnn"], "dataset": ["digits", "adding"],
                                         "corruption": ["rotate"]}})
    with pytest.raises(SpecError, match="dataset adding has no images to corrupt"):
        load_spec(path)
    load_spec(path, ["space.exclude=[{dataset: adding, corruption: rotate}]"])


def test_a_history_from_before_corruptions_resumes_as_uncorrupted(tmp_path):
    from ensembles.resume import finished_rows, history_dtype
    from simulators.run_dir import RunDir

    old = [field for field in history_dtype() if field[0] not in ("corruption", "val_corruption")]
    H = np.zeros(2, dtype=old + [("sim_ended", bool)])
    H["status"], H["sim_ended"], H["identifier"] = "ok", True, ["a", "b"]
    run_dir = RunDir(tmp_path)
    run_dir.save_history(H)
    rows = finished_rows(run_dir)
    assert list(rows["corruption"]) == ["none", "none"] and list(rows["val_corruption"]) == ["none", "none"]
    assert list(rows["identifier"]) == ["a", "b"]
