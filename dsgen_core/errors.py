"""Errors the facade raises; UI and CLI show their message, never a stack trace."""


class DsgenError(Exception):
    """Base for every error a user should see as a message."""


class NotFound(DsgenError):
    pass


class PermissionDenied(DsgenError):
    pass


class InvalidRequest(DsgenError):
    pass
