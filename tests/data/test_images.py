"""Your own images: a class-folder tree of real PNGs, augmentation, class weights, streaming, pretrained starts."""

import dataclasses
import json

import numpy as np
import optuna
import pytest
from conftest import assert_one_line_error, requires_fashion, run_tuner
from image_tree import write_tree
from optuna.trial import TrialState

from search_spaces import cnn
from tuner import data
from tuner.core.settings import StudyConfig
from tuner.core.spec import AUGMENTATION_KINDS, Augmentation, ConvBlock, ModelSpec, TrainSpec, TrialSpec
from tuner.core.study_file import load_study_config
from tuner.core.traits import DataTraits
from tuner.data.builtin import DEBIAN_FASHION_DIR
from tuner.data.image_folder import load_folder
from tuner.data.suitability import MIRROR_KEPT_SKILL, applicable_augmentations, mirror_kept_skill
from tuner.search.study import open_study
from tuner.search.trait_detection import data_traits
from tuner.training.class_weights import class_weights
from tuner.training.harness import cross_validate
from tuner.training.models import build_model

QUICK = ["--folds", "2", "--epochs", "2", "--pruner", "none", "--no-progress"]
V1_PARAMS = {**cnn.TRAIT_DEFAULTS, **cnn.BASELINES["seed000-v1"], "epochs": 2}


@pytest.fixture(scope="module")
def fashion_folder(tmp_path_factory):
    """1,000 Fashion-MNIST images as PNGs, 200 to 50 per class, some resized, one corrupt file."""
    if not DEBIAN_FASHION_DIR.exists():
        pytest.skip("Fashion-MNIST missing: apt-get install dataset-fashion-mnist")
    fashion = data.load_dataset("fashion")
    pixels = (fashion.x_train[:6000, ..., 0] * 255).round().astype("uint8")
    names = [name.replace("/", "-") for name in fashion.class_names]
    return write_tree(tmp_path_factory.mktemp("images") / "fashion", pixels, fashion.y_train[:6000], names)


def _study_file(tmp_path, folder, **settings) -> str:
    settings = {"dataset": f"folder:{folder}", "color_mode": "grayscale", "image_size": 28, "trials": 1, **settings}
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = tmp_path / "images.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _complete(url, name):
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    return [t for t in trials if t.state == TrialState.COMPLETE]


@pytest.mark.slow
@requires_fashion()
def test_folder_study_counts_the_corrupt_file_and_tunes_class_weights(tmp_path, sqlite_url, fashion_folder):
    study = _study_file(tmp_path, fashion_folder, baselines=["seed000-v1"], trials=2)
    # besides the seed baseline (weights and augmentation off), a weighted, augmented trial
    open_study(load_study_config(study, {"folds": 2, "epochs": 2, "pruner": "none"}), sqlite_url).enqueue_trial(
        {
            **V1_PARAMS,
            "class_weight": "total_over_classes",
            "augment_flip": "horizontal",
            "augment_rotation": True,
            "augment_rotation_rate": 0.05,
        }
    )
    result = run_tuner(study, "--storage", sqlite_url, *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 unreadable image(s)" in result.stderr and "broken.png" in result.stderr
    stored = optuna.load_study(study_name="images", storage=sqlite_url)
    assert stored.user_attrs["unreadable_images"] == 1
    assert stored.user_attrs["test_images"] == 200  # a fifth of the 1,000 readable images is held out
    trials = _complete(sqlite_url, "images")
    assert len(trials) == 2
    assert {t.params["class_weight"] for t in trials} == {"none", "total_over_classes"}
    baseline = [t for t in trials if t.user_attrs.get("baseline") == "seed000-v1"]
    assert baseline and baseline[0].params["augment_flip"] == "none"
    assert all(t.value > 0.4 for t in trials)  # 10 classes, largest 25%: learning happened
    assert all(t.user_attrs["start"] == "random" for t in trials)


@pytest.mark.slow
def test_a_resumed_folder_study_keeps_the_flips_its_trials_were_drawn_among(tmp_path, sqlite_url, fashion_folder):
    """A study drawn among all four flip modes (as a folder's were before the mirror test) goes on among them."""
    study = _study_file(tmp_path, fashion_folder, baselines=[], trials=2, class_weights=False)
    every_flip = optuna.distributions.CategoricalDistribution(["none", "horizontal", "vertical", "horizontal_and_vertical"])
    flip = {"augment_flip": "vertical"}
    earlier = optuna.trial.create_trial(params=flip, distributions={"augment_flip": every_flip}, value=0.1)
    resumed = open_study(load_study_config(study, {"folds": 2, "epochs": 2, "pruner": "none"}), sqlite_url)
    resumed.add_trial(earlier)
    resumed.enqueue_trial({**V1_PARAMS, **flip})  # upside-down: a flip the data no longer admit
    result = run_tuner(study, "--storage", sqlite_url, *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "keeps the augmentations its trials were drawn among (horizontal, vertical, rotation" in result.stdout
    assert "the data now admit horizontal, rotation" in result.stdout  # clothes: the left-right mirror only
    later = _complete(sqlite_url, "images")[1]
    assert later.distributions["augment_flip"] == every_flip and later.params["augment_flip"] == "vertical"
    assert later.value > 0.4  # 10 classes, largest 25%: learning happened


@pytest.mark.slow
def test_too_few_classes_or_an_empty_class_is_one_line(tmp_path):
    from PIL import Image

    one = tmp_path / "one"
    (one / "cats").mkdir(parents=True)
    for i in range(3):
        Image.new("L", (10, 10), i * 40).save(one / "cats" / f"{i}.png")
    assert_one_line_error(run_tuner(f"folder:{one}", cwd=tmp_path), "has 1 class folder(s)")
    (one / "dogs").mkdir()
    assert_one_line_error(run_tuner(f"folder:{one}", cwd=tmp_path), "dogs has 0 readable image(s)")
    assert_one_line_error(run_tuner(f"folder:{tmp_path / 'absent'}", cwd=tmp_path), "does not exist")


@pytest.mark.slow
def test_the_test_split_is_fixed_stratified_and_sealed(fashion_folder):
    first = load_folder(str(fashion_folder), image_size=32, color_mode="grayscale", streaming=False)
    again = load_folder.__wrapped__(str(fashion_folder), image_size=32, color_mode="grayscale", streaming=False)
    assert first.input_shape == (32, 32, 1) and len(first.y_train) == 800
    assert first.options["train_paths"] == again.options["train_paths"]  # the same split every time
    assert np.bincount(first.y_train).min() == 40  # stratified: 50-image classes keep 40 for training
    assert first.test_split_reads == 0  # loading never touched the test files
    x_test, y_test = first.test_split()
    assert len(y_test) == 200 and x_test.shape[1:] == (32, 32, 1)
    assert first.test_split_reads == 1


def _augmented_spec(side: int, learning_rate: float) -> TrialSpec:
    model = ModelSpec(
        input_shape=(side, side, 1),
        num_classes=10,
        blocks=(ConvBlock(8, 3),),
        dense_units=(),
        augmentation=Augmentation(flip="horizontal_and_vertical", rotation=0.2, translation=0.2, zoom=0.2),
    )
    return TrialSpec(model, TrainSpec(optimizer="sgd", learning_rate=learning_rate, batch_size=64, epochs=2))


@pytest.mark.slow
def test_augmentation_layers_change_images_only_in_training():
    import keras

    model = build_model(_augmented_spec(28, 0.01).model)
    augmented = keras.Model(model.input, model.get_layer("augment_zoom").output)
    images = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    assert not np.allclose(keras.ops.convert_to_numpy(augmented(images, training=True)), images)
    assert np.array_equal(keras.ops.convert_to_numpy(augmented(images, training=False)), images)
    assert np.array_equal(model.predict(images, verbose=0), model.predict(images, verbose=0))  # test-time: no augmentation


@pytest.mark.slow
def test_harness_validates_on_unaugmented_images(fashion_folder):
    """With a learning rate of 0 the weights never change: validation must repeat exactly, training must not."""
    folder = load_folder(str(fashion_folder), image_size=28, color_mode="grayscale", streaming=False)
    result = cross_validate(_augmented_spec(28, 0.0), folder.x_train[:300], folder.y_train[:300], folds=2, seed=1)
    for fold in result.folds:
        assert fold.history["val_loss"][0] == fold.history["val_loss"][1]
        assert fold.history["loss"][0] != fold.history["loss"][1]  # augmented differently each epoch


@pytest.mark.slow
def test_the_space_only_offers_augmentation_that_suits_the_data(fashion_folder):
    digits = data.load_dataset("digits")
    assert applicable_augmentations("digits", (8, 8)) == ()  # 8x8: nothing to spare
    assert "horizontal" not in applicable_augmentations("mnist", (28, 28))  # a mirrored 2 is no 2
    assert applicable_augmentations("fashion", (28, 28)) == ("horizontal", "rotation", "translation", "zoom")
    assert applicable_augmentations("folder:x", (28, 28), "off") == ()
    assert data_traits(StudyConfig(name="d", dataset="digits"), digits) == DataTraits()  # balanced 8x8: the core space
    folder = load_folder(str(fashion_folder), image_size=28, color_mode="grayscale", streaming=False)
    config = StudyConfig(name="f", dataset=f"folder:{fashion_folder}", image_size=[28, 32])
    traits = data_traits(config, folder)  # clothes: a left-right mirror keeps the label, upside down does not
    assert traits == DataTraits(
        image_sizes=(28, 32), augmentations=("horizontal", "rotation", "translation", "zoom"), class_weights=True
    )
    asked = data_traits(StudyConfig(name="f", dataset=config.dataset, augmentation=list(AUGMENTATION_KINDS)), folder)
    assert asked.augmentations == AUGMENTATION_KINDS  # what the study asks for, unmeasured
    every_kind = dataclasses.replace(traits, augmentations=AUGMENTATION_KINDS)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    flips = set()
    for _ in range(30):
        trial = study.ask()
        spec = cnn.SPACE.suggest(trial, folder.input_shape, 10, 2, traits=every_kind)
        flips.add(spec.model.augmentation.flip)
        assert spec.model.input_shape[0] == trial.params["image_size"]
        assert (spec.model.augmentation.rotation > 0) == trial.params["augment_rotation"]
        study.tell(trial, 0.0)
    assert flips == {"none", "horizontal", "vertical", "horizontal_and_vertical"}
    # the same trial without traits is the core space: no new parameters
    trial = study.ask()
    cnn.SPACE.suggest(trial, (28, 28, 1), 10, 2)
    assert not {"image_size", "augment_flip", "class_weight"} & set(trial.params)


@requires_fashion()
def test_a_mirror_keeps_clothes_but_not_digits():
    fashion = data.load_dataset("fashion")
    clothes = mirror_kept_skill(fashion.x_train[:3000], fashion.y_train[:3000])
    assert clothes["horizontal"] >= MIRROR_KEPT_SKILL > clothes["vertical"]
    digits = data.load_dataset("digits")
    big_digits = np.kron(digits.x_train, np.ones((1, 2, 2, 1), "float32"))  # 16x16: large enough to augment
    assert max(mirror_kept_skill(big_digits, digits.y_train).values()) < MIRROR_KEPT_SKILL
    folder_of_digits = dataclasses.replace(digits, name="folder:digits", x_train=big_digits)
    traits = data_traits(StudyConfig(name="d", dataset="folder:digits"), folder_of_digits)
    assert traits.augmentations == ("rotation", "translation", "zoom")  # measured: no flip


def test_class_weight_formulas_of_seed_004():
    labels = np.array([0] * 200 + [1] * 100 + [2] * 50)
    assert class_weights(labels, "none") is None
    assert class_weights(labels, "max_over_count") == {0: 1.0, 1: 2.0, 2: 4.0}
    formula2 = class_weights(labels, "total_over_classes")
    assert formula2 == pytest.approx({0: 350 / 600, 1: 350 / 300, 2: 350 / 150})
    assert sum(formula2[c] * n for c, n in enumerate((200, 100, 50))) == pytest.approx(350)  # mean weight per image 1


@pytest.mark.slow
@requires_fashion()
def test_a_streamed_folder_trains_per_fold_on_jax(tmp_path, sqlite_url, fashion_folder):
    study = _study_file(tmp_path, fashion_folder, baselines=["seed000-v1"], streaming=True, augmentation="off")
    result = run_tuner(study, "--storage", sqlite_url, *QUICK, cwd=tmp_path, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    assert optuna.load_study(study_name="images", storage=sqlite_url).user_attrs["streamed"] is True
    (trial,) = _complete(sqlite_url, "images")
    assert trial.user_attrs["backend"] == "jax" and trial.user_attrs["n_folds"] == 2
    assert trial.value > 0.4  # streamed from disk, batch by batch, and still learned


@pytest.mark.slow
def test_pretrain_on_an_mnist_npz_then_start_a_study_from_it(tmp_path, sqlite_url, fashion_folder, digits_28_npz):
    weights = tmp_path / "weights"
    made = run_tuner(
        "pretrain",
        "mnist",
        "--data-dir",
        str(digits_28_npz),
        "--out",
        str(weights),
        "--epochs",
        "3",  # features worth freezing: one epoch of 1,000 digits is 8 steps
        "--subset",
        "1000",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    architecture = json.loads((weights / "architecture.json").read_text())
    assert architecture["source"] == "mnist" and architecture["batch_norm"] is True  # seed 002's model
    assert architecture["layers"] == ["block0_conv0", "block0_bn0", "block1_conv0", "block1_bn0"]

    study = _study_file(tmp_path, fashion_folder, pretrained=str(weights), trials=2, augmentation="off", class_weights=False)
    quick = [*QUICK, "--epochs", "4"]  # 2 to 4 epochs: a frozen start learns only in its dense head
    result = run_tuner(study, "--storage", sqlite_url, "--subset", "400", "--sampler", "random", *quick, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trials = _complete(sqlite_url, "images")
    assert trials
    for trial in trials:
        mode = "frozen" if trial.params["pretrained_start"] == "freeze" else "fine-tuned"
        assert trial.user_attrs["start"] == f"pretrained:{weights} ({mode})"
        assert "n_blocks" not in trial.params  # the conv layers are the pretrained ones
    assert max(t.value for t in trials) > 0.4

    rgb = _study_file(tmp_path, fashion_folder, pretrained=str(weights), color_mode="rgb")
    assert_one_line_error(
        run_tuner(rgb, "--study-name", "rgb", "--storage", sqlite_url, *QUICK, cwd=tmp_path),
        "expect 1-channel images but this data set has 3",
    )


@pytest.mark.slow
def test_image_size_and_colour_come_from_the_training_files_only(tmp_path):
    """The test split stays unseen: files held out for testing must not choose the image size or the colours."""
    from PIL import Image

    from tuner.data.dataset import HELD_OUT_FRACTION, SPLIT_SEED

    root = tmp_path / "tree"
    rng = np.random.default_rng(0)
    paths = []
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(10):
            path = root / label / f"{index:02d}.png"
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype="uint8")).save(path)
            paths.append(path)
    from sklearn.model_selection import train_test_split

    labels = [0] * 10 + [1] * 10
    _, test_idx = train_test_split(np.arange(20), test_size=HELD_OUT_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    for index in test_idx:  # the held-out files alone are colour and 40 pixels a side
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype="uint8")).save(paths[index])
    folder = load_folder.__wrapped__(str(root))
    assert folder.input_shape == (20, 20, 1)  # what the training files say
    assert folder.notes["image_size"] == 20 and folder.notes["channels"] == 1
