"""The model zoo: pretrained entries saved, found, verified and loaded safely.

An entry is a folder (like a KerasHub preset) with `model.keras`, the
preprocessor (`preprocessor.json`, `tokenizer.json`), `metadata.json` (task,
architecture, recipe, dataset, metrics, sizes and sha256 of every file,
versions) and a generated model card, `README.md`. See `mmzoo.zoo.entry`.

Example:

```python
import mmzoo

mmzoo.zoo.list_models("vqa_*")
entry = mmzoo.zoo.load("vqa_cnn_lstm_32px")         # verified, safe_mode=True
entry.predict(images="scene.png", texts="what colour is the circle?")
entry.evaluate()                                    # re-measure the card's metrics

mmzoo.zoo.save_entry("saved_models/my_model", model, preprocessor,
                     metadata={"dataset": dataset, "metrics": metrics})
```
"""

# Finding, listing, verifying and publishing entries need no TensorFlow, so
# `mmzoo list` and `mmzoo info` start at once. Loading a model (`ZooEntry`),
# saving one and measuring metrics import Keras: on first use, below.
from mmzoo.zoo.card import flatten_metrics, model_card
from mmzoo.zoo.folder import EntryVerificationError, read_metadata, sha256_file, verify_entry
from mmzoo.zoo.publish import publish_entry
from mmzoo.zoo.registry import list_models, load, mmzoo_home, search_paths

__all__ = [
    "EntryVerificationError",
    "ZooEntry",
    "card_differences",
    "compare_metrics",
    "evaluation_settings",
    "flatten_metrics",
    "list_models",
    "load",
    "measure_metrics",
    "mmzoo_home",
    "model_card",
    "near_tie",
    "publish_entry",
    "read_metadata",
    "save_entry",
    "search_paths",
    "sha256_file",
    "shapes_dataset_metadata",
    "verify_entry",
]


def __getattr__(name):
    if name in ("ZooEntry", "save_entry"):
        from mmzoo.zoo import entry as module
    elif name in ("card_differences", "compare_metrics", "evaluation_settings",
                  "measure_metrics", "near_tie", "shapes_dataset_metadata"):
        from mmzoo.zoo import evaluation as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
