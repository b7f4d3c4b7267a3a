"""The one exception type that means "the user asked for something we cannot do"."""


class TunerError(Exception):
    """Bad input or an unusable environment.

    The CLI prints it as a single line and exits with status 2, with no
    traceback: the message itself must name the problem and the fix.
    """

    exit_code = 2
