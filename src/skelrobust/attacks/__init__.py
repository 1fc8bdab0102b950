"""Adversarial attacks on skeleton classifiers (white-box and black-box)."""

from skelrobust.attacks.base import (
    NORMS,
    Attack,
    AttackResult,
    goal_margin,
    motion_mask,
    project_budget,
)
from skelrobust.attacks.ciasa import CIASA
from skelrobust.attacks.discriminator import BoneDirectionDiscriminator, train_discriminator
from skelrobust.attacks.eot import EOT
from skelrobust.attacks.gradient import BIM, FGSM, IFGSM, MIFGSM, PGD, IterativeGradient
from skelrobust.attacks.projection import realign_bone_lengths, realign_within_budget
from skelrobust.attacks.sampling import batched_logits, choose_clips, correct_mask
from skelrobust.attacks.smart import SMART
from skelrobust.attacks.transfer import Ensemble, TransferResult, replay_success, transfer_matrix
from skelrobust.attacks.white_box import GradientAttack

__all__ = [
    "BIM",
    "CIASA",
    "EOT",
    "FGSM",
    "IFGSM",
    "MIFGSM",
    "NORMS",
    "PGD",
    "SMART",
    "Attack",
    "AttackResult",
    "BoneDirectionDiscriminator",
    "Ensemble",
    "GradientAttack",
    "IterativeGradient",
    "TransferResult",
    "batched_logits",
    "choose_clips",
    "correct_mask",
    "goal_margin",
    "motion_mask",
    "project_budget",
    "realign_bone_lengths",
    "realign_within_budget",
    "replay_success",
    "train_discriminator",
    "transfer_matrix",
]
