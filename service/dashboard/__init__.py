"""The dashboard: one static page that reads the public API with the viewer's own key."""

from service.dashboard.routes import router

__all__ = ["router"]
