"""The effscale web service: REST API, dashboard, search launcher (``effscale serve``)."""

from __future__ import annotations

from effscale.service.app import create_app, serve

__all__ = ["create_app", "serve"]
