"""Learned compression: listed so the page says honestly that it has not landed yet. When
``pixelforge.pipelines.compression`` exists, give this tab its actions (see upscale.py)."""

from . import Tab, module_exists

TAB = Tab("compress", "Compress", "Compress an image; bits per pixel and PSNR beside JPEG at the same size.",
          available=module_exists("pixelforge.pipelines.compression"),
          unavailable="Learned compression is not part of this version of pixelforge.")
