"""Classify: top-3 labels of an uploaded image from a classifier run or a shipped classifier."""

from __future__ import annotations

from ..studio import to_model_tensor
from ..forms import Action, Field, Result, Tab, module_exists


def classify(studio, v: dict) -> Result:
    pipe = studio.load(v["model"], ["classifier"])
    x = to_model_tensor(v["image"], pipe.cfg.image_size, pipe.cfg.channels)
    top = pipe.topk(x)[0]
    return Result(images=[("as the model sees it", studio.save(x.float() / 255))],
                  metrics={name: f"{p * 100:.1f}%" for name, p in top})


TAB = Tab("classify", "Classify", "Top-3 classes of an image.",
          available=module_exists("pixelforge.pipelines.classifier"),
          actions=[Action("classify", "Classify", [
              Field("model", "run", "Model", families=["classifier"]),
              Field("image", "image", "Image"),
          ], classify)])
