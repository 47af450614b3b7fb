"""vitbench: evaluate and compare Vision Transformer ImageNet classifiers.

The public API mirrors timm's:

    list_models(pattern="*")                  registered checkpoint names
    create_model(name, pretrained=False, weights=None, num_classes=None)
    load_weights(model, path_or_dir)          strict, with clear errors
    resolve_data_config(name_or_model)        the checkpoint's eval preprocessing
    create_transform(data_config)             PIL image -> normalized float tensor
    count_stats(model_or_name)                params, GMACs, GMACs without attention, activations
    evaluate(model, datasets, data_config, name, results_dir)   a model built in Python, into the records
"""
__version__ = "0.1.0"

from vitbench.catalog.registry import UnknownModelError, get_checkpoint, list_models  # noqa: E402
from vitbench.data.config import DataConfig, resolve_data_config  # noqa: E402

_LAZY = {   # name -> (module, attribute)
    "create_model": ("vitbench.models", "create_model"),
    "load_weights": ("vitbench.weights", "load_weights"),
    "create_transform": ("vitbench.data.transforms", "create_transform"),
    "count_stats": ("vitbench.stats", "count_stats"),
    "evaluate": ("vitbench.run.runner", "evaluate_model"),
}


def __getattr__(name):
    # torch-heavy parts load on first use, so `vitbench list` stays fast.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vitbench' has no attribute {name!r}")


__all__ = [
    "list_models", "get_checkpoint", "UnknownModelError", "DataConfig", "resolve_data_config",
    "create_model", "load_weights", "create_transform", "count_stats", "evaluate", "__version__",
]
