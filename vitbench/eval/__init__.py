"""Evaluation: passes that decode each image once and feed every model of a preprocessing key
(engine), what their logits score (scoring), the loader (loader), the per-image predictions file
(predictions), precisions (precision) and torchrun groups (distributed).

    evaluate(model, loader, spec, device="cpu", precision="fp32") -> EvalResult   # one model, one pass
    evaluate(..., compile=True, channels_last=True)     # torch.compile'd, channels-last weights and inputs
"""
from vitbench.eval.engine import Engine, EngineJob, ModelSource, Outcome, Pass, PassSettings, crop_key, evaluate
from vitbench.eval.scoring import EvalResult, EvalSpec, Predictions

__all__ = ["evaluate", "Engine", "EngineJob", "ModelSource", "Outcome", "Pass", "PassSettings", "crop_key",
           "EvalResult", "EvalSpec", "Predictions"]
