"""Domain errors carry their HTTP status, so one handler renders them all."""

from __future__ import annotations

from pydantic import BaseModel


class TruceError(Exception):
    """Base of every expected failure; ``status`` is what the API answers."""

    status: int = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def detail(self) -> object:
        if self.field:
            kind = type(self).__name__
            return [{"loc": self.field.split("."), "msg": self.message, "type": kind}]
        return self.message


class NotFound(TruceError):
    status = 404


class Conflict(TruceError):
    status = 409


class Invalid(TruceError):
    """Input that parsed but breaks a rule; names the field in ``detail``."""

    status = 422


class Unauthorized(TruceError):
    status = 401


class Forbidden(TruceError):
    status = 403


class ConfigurationError(TruceError):
    """A setting or credential that a person must fix; retrying will not help."""

    status = 400


class ErrorItem(BaseModel):
    """One problem with the input: where (``loc``), what (``msg``) and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: a message, or for invalid input the list of problems."""

    detail: str | list[ErrorItem]
