"""``pixelforge serve``: the web studio (generate, inpaint, restore, upscale, runs) in the browser.

Needs the ``web`` extra (Starlette + uvicorn): ``pip install 'pixelforge[web]'``.
"""

from .studio import Studio

__all__ = ["Studio", "create_app", "serve"]


def create_app(*args, **kwargs):
    from .app import create_app as _create

    return _create(*args, **kwargs)


def serve(*args, **kwargs):
    from .app import serve as _serve

    return _serve(*args, **kwargs)
