"""Campaigns: a partnership's arc as a chain of stages — pilot, evaluation, renegotiation,
scale-up — with one linked transcript per stage.

- ``model``: the campaign file, its stages, loading and checking it; results;
- ``trust``: how distrust raises reservation values and evaluations update trust;
- ``runner``: runs the stages in order, carrying the agreement in force, trust and memories;
- ``manifest``: ``campaign.json`` and checking a campaign folder.
"""

from negotiation.campaign.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    read_manifest,
    verify_campaign,
)
from negotiation.campaign.model import (
    Campaign,
    CampaignError,
    CampaignResult,
    EvaluateStage,
    InForce,
    LoadedCampaign,
    NegotiateStage,
    StageResult,
    load_campaign,
)
from negotiation.campaign.runner import LLM_CALLS, CampaignRunner, StageHook, run_campaign
from negotiation.campaign.trust import MAX_RESERVATION

__all__ = [
    "LLM_CALLS",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "MAX_RESERVATION",
    "Campaign",
    "CampaignError",
    "CampaignResult",
    "CampaignRunner",
    "EvaluateStage",
    "InForce",
    "LoadedCampaign",
    "NegotiateStage",
    "StageHook",
    "StageResult",
    "load_campaign",
    "read_manifest",
    "run_campaign",
    "verify_campaign",
]
