"""Recommender: a calibrated cost model and a planner that proposes technique stacks.

Public face: `recommender.api` (plan, evaluate_stack, estimate, list_models, list_gpus, exports, figures, the
calibration report). No streamlit, no torch: usable from notebooks, the CLI and tests.
"""

from .api import (
    GPU,
    InferenceConfig,
    ModelSpec,
    Plan,
    PlanRequest,
    PlanResult,
    RecommenderInputError,
    TrainingConfig,
    estimate_inference,
    estimate_training,
    evaluate_stack,
    plan,
)

__all__ = ["GPU", "InferenceConfig", "ModelSpec", "Plan", "PlanRequest", "PlanResult", "RecommenderInputError",
           "TrainingConfig", "estimate_inference", "estimate_training", "evaluate_stack", "plan"]
