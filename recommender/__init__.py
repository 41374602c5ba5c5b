"""Recommender: a calibrated cost model and a planner that proposes technique stacks.

Public API: see recommender.api (estimate, plan, list_models, list_gpus, project_speculative_speedup).
No streamlit, no torch: usable from notebooks, the CLI and tests.
"""

from .errors import RecommenderInputError
from .estimate import InferenceConfig, TrainingConfig, estimate_inference, estimate_training
from .hardware import GPU
from .models import ModelSpec
from .planner import PlanRequest, plan

__all__ = ["GPU", "InferenceConfig", "ModelSpec", "PlanRequest", "RecommenderInputError", "TrainingConfig",
           "estimate_inference", "estimate_training", "plan"]
