"""`serve`: the REST API and the dashboard. It prints no document (uvicorn logs its start), so it
offers no ``--json``."""

from __future__ import annotations

import argparse

from effscale.cli.flags import options


def serve_settings() -> tuple[type, ...]:
    from effscale.service.options import ServeOptions

    return (ServeOptions,)


def cmd_serve(args: argparse.Namespace) -> int:
    from effscale.service.options import ServeOptions
    from effscale.service.server import serve

    o = options(args, ServeOptions)
    # serve() checks everything (port, host and token, state dir, data root, a taken port, the
    # storage) before it starts: a bad value is a one-line error now, not a failing server later.
    serve(o.storage, host=o.host, port=o.port, ray_address=o.ray_address, state_dir=o.state_dir,
          data_root=o.data_root, allow_user_baselines=o.allow_user_baselines, workers=o.workers)
    return 0
