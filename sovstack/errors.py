"""The one exception the CLI turns into a one-line error and a non-zero exit."""


class SovstackError(Exception):
    """An error the operator can act on: the message says what is wrong and what to do."""
