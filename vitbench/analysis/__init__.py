"""Analyses over measured predictions and published numbers: pure functions from plain data
(prediction frames, results CSVs as DataFrames, arrays) to dataclasses and DataFrames. Nothing here
reads the record store; the report and the CLI hand the data in.

    agreement    compare_predictions(frame_a, frame_b) -> Agreement       (vitbench compare)
    robustness   in1k_only, fit_baseline, effective_robustness, ...       (vitbench robustness)
    calibration  ece, reliability, reliability_diagram
    per_class    per_class_accuracy, worst_classes
    scoring      top1_1000way (ImageNet-A/R over all 1000 classes, at eval time)
    plots        robustness_plot, published_points
"""
from vitbench.analysis.agreement import Agreement, compare_predictions, pair_frames
from vitbench.analysis.calibration import ece, reliability, reliability_diagram
from vitbench.analysis.per_class import per_class_accuracy, worst_classes
from vitbench.analysis.robustness import (
                                          ER_SETS,
                                          Baseline,
                                          effective_robustness,
                                          fit_baseline,
                                          in1k_only,
                                          published_baseline,
                                          robustness_table,
)
from vitbench.analysis.scoring import top1_1000way

__all__ = ["Agreement", "compare_predictions", "pair_frames", "ece", "reliability", "reliability_diagram",
           "per_class_accuracy", "worst_classes", "ER_SETS", "Baseline", "effective_robustness",
           "fit_baseline", "in1k_only", "published_baseline", "robustness_table", "top1_1000way"]
