"""Import every table so Alembic and the tests see the whole schema."""

from service.auth.models import ApiKey, AuditEvent  # noqa: F401
