"""Adversarial attacks on skeleton classifiers (white-box and black-box)."""

from skelrobust.attacks.base import Attack, AttackResult, goal_margin, motion_mask, project_budget

__all__ = ["Attack", "AttackResult", "goal_margin", "motion_mask", "project_budget"]
