"""Style transfer: listed so the page says honestly that it has not landed yet. When
``pixelforge.pipelines.style`` exists, give this tab its actions (see upscale.py)."""

from . import Tab, module_exists

TAB = Tab("style", "Style", "Restyle a content image after a style image.",
          available=module_exists("pixelforge.pipelines.style"),
          unavailable="Style transfer is not part of this version of pixelforge.")
