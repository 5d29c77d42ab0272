"""Errors the services raise; views and the API map them to HTTP statuses.

Every app's services raise these (or subclasses), so the API's one
exception handler (config/api.py) and the views answer them the same way.
"""


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """The request clashes with the current state: 409, nothing written."""

    status = 409


class InvalidInput(ServiceError):
    status = 400


class PayloadTooLarge(ServiceError):
    status = 413


class Forbidden(ServiceError):
    """The caller may not do this now (an annotator paused on a project): 403, nothing written."""

    status = 403
