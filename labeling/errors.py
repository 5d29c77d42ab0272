"""Errors the labeling services raise; views map them to HTTP statuses."""


class LabelingError(Exception):
    status = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotFound(LabelingError):
    status = 404


class Conflict(LabelingError):
    """The request clashes with the current state: 409, nothing written."""

    status = 409


class InvalidInput(LabelingError):
    status = 400
