"""The error a model part raises when the configuration or the data it is
given cannot work, so that the tools report it as one line."""


class ModelConfigError(ValueError):
    """A model's configuration does not fit its data or its checkpoint
    (e.g. more label-code bits than the labels can fix, a database loaded
    from another dataset). The message names the config key or the file
    and what was expected; the tools print it as one line, without a
    traceback."""
