"""A user's define-by-run model, in a module of its own so that a subprocess can import it without pytest's conftest."""

import keras


def small_cnn(trial):
    """A user's model: filters, dropout, optimiser settings and batch size drawn from the trial."""
    filters = trial.suggest_int("filters", 8, 16, log=True)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(trial.suggest_float("dropout", 0.0, 0.3)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(trial.suggest_float("learning_rate", 0.02, 0.1, log=True), momentum=0.9))
    trial.suggest_categorical("batch_size", [16, 32])
    return model
