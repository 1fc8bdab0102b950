"""Victim classifiers and their registry."""

from skelrobust.models.registry import create_model, list_models, model_spec, register_model

__all__ = ["create_model", "list_models", "model_spec", "register_model"]
