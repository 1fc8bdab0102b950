"""Adversarial attacks on skeleton classifiers (white-box and black-box)."""

from skelrobust.attacks.basar import BASAR
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
from skelrobust.attacks.hsja import HopSkipJump
from skelrobust.attacks.label_only import LabelOnlyAttack
from skelrobust.attacks.oracle import ExpectationOracle, GradientOracle, QueryOracle
from skelrobust.attacks.projection import realign_bone_lengths, realign_within_budget
from skelrobust.attacks.registry import create_attack, list_attacks, register_attack
from skelrobust.attacks.sampling import batched_logits, choose_clips, correct_mask
from skelrobust.attacks.smart import SMART
from skelrobust.attacks.transfer import Ensemble, TransferResult, replay_success, transfer_matrix
from skelrobust.attacks.white_box import GradientAttack

__all__ = [
    "BASAR",
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
    "ExpectationOracle",
    "GradientAttack",
    "GradientOracle",
    "HopSkipJump",
    "IterativeGradient",
    "LabelOnlyAttack",
    "QueryOracle",
    "TransferResult",
    "batched_logits",
    "choose_clips",
    "correct_mask",
    "create_attack",
    "goal_margin",
    "list_attacks",
    "motion_mask",
    "project_budget",
    "realign_bone_lengths",
    "realign_within_budget",
    "register_attack",
    "replay_success",
    "train_discriminator",
    "transfer_matrix",
]
