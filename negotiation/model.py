"""The data of a negotiation: scenarios, organisations, issues, preferences, offers, actions.

Everything here is declared once with pydantic and validated at the edge (a scenario file,
an LLM reply); code inside the package trusts these objects.  Structural rules (types,
ranges, unknown fields) live on the models; rules that relate one part of a scenario to
another (weights naming issues, red lines naming options) live in ``negotiation.scenario``,
which reports each problem with its field path and a fix.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_\-]*$",
        min_length=1,
        max_length=64,
        description="Lower-case identifier: letters, digits, '_' or '-', starting with a letter.",
    ),
]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
#: Scenarios with more possible agreements are refused: every analysis and rule-based agent
#: tables utilities over the whole outcome space.
MAX_OUTCOMES = 10**7

#: The value an offer gives one issue: an option name, a number, or shares per party.
TermValue = str | int | float | dict[str, int]


class Strict(BaseModel):
    """Base for every model read from a file: unknown fields are errors, not silently dropped,
    and NaN or infinite numbers (``"nan"``, ``"1e999"``) are refused wherever a float is read."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- issues -------------------------------------------------------------------------------


class IssueBase(Strict):
    id: Identifier
    name: str = Field(min_length=1, description="Human-readable name of the issue.")
    description: str = ""


class DiscreteIssue(IssueBase):
    """An issue settled by choosing one of a few named options."""

    kind: Literal["discrete"] = "discrete"
    options: list[Identifier] = Field(min_length=2)
    labels: dict[str, str] = Field(
        default_factory=dict, description="Optional plain-language text for each option."
    )


class NumericIssue(IssueBase):
    """An issue settled by a number on a grid ``min, min + step, …, max``."""

    kind: Literal["numeric"] = "numeric"
    min: float
    max: float
    step: float = Field(gt=0)
    unit: str = ""

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min")
        if low is not None and value <= low:
            raise ValueError(f"max ({value:g}) must be greater than min ({low:g})")
        return value

    @field_validator("step")
    @classmethod
    def _step_divides_range(cls, value: float, info: ValidationInfo) -> float:
        low, high = info.data.get("min"), info.data.get("max")
        if low is not None and high is not None and value > 0:
            steps = (high - low) / value
            if not steps <= MAX_OUTCOMES:  # also catches an overflow to infinity
                raise ValueError(f"(max - min) / step = {steps:g} steps, more than "
                                 f"{MAX_OUTCOMES:,}; choose a larger step")
            if abs(steps - round(steps)) > 1e-9:
                raise ValueError(f"(max - min) / step = {steps:g} is not a whole number; "
                                 f"choose a step that divides {high - low:g}")
        return value


class SplitIssue(IssueBase):
    """Shares of a common pot among named parties, in whole percent summing to 100."""

    kind: Literal["split"] = "split"
    parties: list[Identifier] = Field(min_length=2)
    step: int = Field(default=5, gt=0, le=100)
    pot: str = Field(default="", description="What is being split, e.g. 'net in-app revenue'.")
    nature: Literal["benefit", "cost"] = Field(
        default="benefit",
        description="Whether a larger share is a gain (revenue) or a burden (costs). Fairness "
                    "compares benefit shares with contributions.",
    )

    @field_validator("step")
    @classmethod
    def _step_reaches_100(cls, value: int) -> int:
        if 100 % value:
            raise ValueError(f"step {value} cannot make shares that sum to 100; use a divisor "
                             "of 100 such as 1, 2, 5, 10, 20, 25 or 50")
        return value


Issue = Annotated[DiscreteIssue | NumericIssue | SplitIssue, Field(discriminator="kind")]


# --- private preferences -------------------------------------------------------------------


class ValueFunction(Strict):
    """How much one organisation values each possible setting of one issue, in [0, 1].

    Exactly one form is given:
    ``scores`` (discrete issues: option → score),
    ``points`` (numeric and split issues: piecewise-linear ``[[x, score], …]``, flat at the
    end scores outside the points' x range), or
    ``prefer: high | low`` (a straight line from the worst to the best end of the range).
    For a split issue, ``x`` is the share (0–100) of ``share_of`` (default: the organisation
    itself).
    """

    scores: dict[str, Score] | None = None
    points: list[tuple[float, Score]] | None = Field(
        default=None,
        description="Piecewise-linear [[x, score], …] with increasing x, joined by straight "
                    "lines; outside the first and last x the score stays flat at the end "
                    "value (give points at the issue's min and max to make the ends differ).")
    prefer: Literal["high", "low"] | None = None
    share_of: Identifier | None = None

    @model_validator(mode="after")
    def _exactly_one_form(self) -> ValueFunction:
        given = [name for name in ("scores", "points", "prefer") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'scores' (discrete issues), 'points' or 'prefer' "
                f"(numeric and split issues); found {given or 'none'}"
            )
        if self.points is not None:
            xs = [x for x, _ in self.points]
            if len(xs) < 2 or any(b <= a for a, b in itertools.pairwise(xs)):
                raise ValueError("'points' needs at least two [x, score] pairs with increasing x")
        return self


Comparison = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in"]


class RedLine(Strict):
    """A declarative constraint an organisation will never accept an agreement without.

    ``issue`` names the issue; for a split issue ``party`` names whose share is constrained.
    ``value`` is an option, a number, or a list of options for ``in`` / ``not_in``.
    """

    issue: Identifier
    op: Comparison
    value: str | float | list[str]
    party: Identifier | None = None
    reason: str = ""


class Preferences(Strict):
    """An organisation's confidential brief.  Only its own agent and the referee see it."""

    weights: dict[str, Annotated[float, Field(ge=0.0)]]
    values: dict[str, ValueFunction]
    reservation_value: Score = Field(
        description="Utility of the best alternative to a negotiated agreement (BATNA)."
    )
    batna: str = Field(default="", description="What the organisation does without a deal.")
    red_lines: list[RedLine] = Field(default_factory=list)
    # Left out of dumps when 1, so the digests and views of undiscounted scenarios (and the
    # transcripts and recordings that hold them) stay what they were before it existed.
    discount: float = Field(
        default=1.0, gt=0.0, le=1.0, exclude_if=lambda d: d == 1.0,
        description="GENIUS-style discount factor d: an agreement at normalised time t in "
                    "[0, 1] is worth utility × d^t to this organisation (1: no discounting).")


# --- organisations and scenarios -----------------------------------------------------------


class Contribution(Strict):
    """What an organisation brings, publicly stated; the basis of proportional fairness."""

    value: float = Field(ge=0.0, description="Relative size of the contribution.")
    description: str = ""


class LLMSettings(Strict):
    """How an LLM agent reaches its model.  No secrets here: the API key comes from the
    environment variable named by ``api_key_env``."""

    model: str = Field(min_length=1)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(default=800, gt=0)
    persona: str = Field(default="", description="How this negotiator should come across.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint; "
                                                          "default $OPENAI_BASE_URL.")
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(default=60.0, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(default=3, ge=0, description="Retries of timeouts, 429 and 5xx, "
                                                         "with backoff.")
    max_invalid_replies: int = Field(default=2, ge=0, description="Re-asks after a reply "
                                                                 "that is not a valid move.")
    response_format: Literal["json_schema", "json_object"] = "json_schema"
    use_tools: bool = Field(default=True, description="Offer the evaluate_terms tool.")


class AgentSpec(Strict):
    """Which negotiator represents an organisation unless the command line says otherwise."""

    strategy: str = Field(default="boulware", min_length=1)
    llm: LLMSettings | None = Field(default=None, description="Settings when strategy is "
                                                              "'llm'.")


class PublicProfile(Strict):
    """What every party may know about an organisation."""

    id: Identifier
    name: str = Field(min_length=1)
    mission: str = ""
    capabilities: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    contribution: Contribution = Field(default_factory=lambda: Contribution(value=1.0))


class Organization(PublicProfile):
    """A party to the negotiation: its public profile, its private preferences, its agent."""

    preferences: Preferences
    agent: AgentSpec = Field(default_factory=AgentSpec)

    def public(self) -> PublicProfile:
        return PublicProfile(
            id=self.id,
            name=self.name,
            mission=self.mission,
            capabilities=self.capabilities,
            needs=self.needs,
            contribution=self.contribution,
        )


class ProtocolConfig(Strict):
    name: str = Field(default="alternating_offers",
                      pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$",
                      description="A built-in protocol, or a registered one: installed as "
                                  "an entry point or given with --plugin.")
    rounds: int = Field(default=30, ge=1, le=100_000)
    # Left out of dumps when absent, so undated scenarios keep their digests.
    seconds: float | None = Field(
        default=None, gt=0, le=1_000_000, exclude_if=lambda value: value is None,
        description="A deadline in seconds of negotiation as well as in rounds: the run ends "
                    "at whichever comes first. Time is read from the driver's clock and "
                    "recorded in the transcript, so runs replay and resume exactly.")
    min_coalition: int | None = Field(
        default=None, ge=2,
        description="mediated_single_text only: parties may leave while at least this many "
                    "remain, and an agreement among them is valid.")


CheckLevel = Literal["off", "warn", "block"]


class CheckPolicy(Strict):
    """How one guardrail check treats proposals and agreements."""

    proposals: CheckLevel
    agreements: CheckLevel


class ParetoPolicy(CheckPolicy):
    proposals: CheckLevel = "off"
    agreements: CheckLevel = "warn"
    max_distance: float = Field(default=0.05, ge=0.0,
                                description="Largest tolerated distance to the frontier.")


class FairnessPolicy(CheckPolicy):
    proposals: CheckLevel = "warn"
    agreements: CheckLevel = "warn"
    min_nash_ratio: float = Field(default=0.6, ge=0.0, le=1.0,
                                  description="Nash product relative to the best possible.")
    max_ks_distance: float = Field(default=0.3, ge=0.0,
                                   description="Largest distance to the Kalai–Smorodinsky point.")
    min_egalitarian_gain: float = Field(default=0.0, description="Lowest tolerated gain over "
                                                                 "reservation of any party.")
    max_share_deviation: float = Field(default=25.0, ge=0.0, le=100.0,
                                       description="Largest gap, in percentage points, between a "
                                                   "benefit share and the contribution-based "
                                                   "share.")


class CustomCheck(Strict):
    """A guardrail check written outside this package (see ``negotiation.api``)."""

    use: str = Field(min_length=1, description="The name of a registered check: installed "
                                               "as an entry point or given with --plugin.")
    proposals: CheckLevel = "warn"
    agreements: CheckLevel = "block"
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Keyword arguments for the check's class.")


class GuardrailPolicy(Strict):
    """Which checks block, which only warn, and their thresholds (the scenario's
    ``guardrails:`` block).  Validity always blocks: invalid terms cannot be agreed."""

    red_lines: CheckPolicy = Field(
        default_factory=lambda: CheckPolicy(proposals="block", agreements="block"))
    individual_rationality: CheckPolicy = Field(
        default_factory=lambda: CheckPolicy(proposals="off", agreements="block"))
    pareto: ParetoPolicy = Field(default_factory=ParetoPolicy)
    fairness: FairnessPolicy = Field(default_factory=FairnessPolicy)
    accountability: CheckPolicy = Field(
        default_factory=lambda: CheckPolicy(proposals="block", agreements="block"))
    injection: CheckLevel = Field(
        default="warn", description="What to do with a move whose message or rationale reads "
                                    "like instructions to the other agents.")
    custom: list[CustomCheck] = Field(
        default_factory=list, description="Your own checks, by import path or installed name.")


class CoalitionValue(Strict):
    """What a set of organisations can create together (for Shapley-value fairness)."""

    members: list[Identifier] = Field(min_length=1)
    value: float


class Actor(Strict):
    """An organisation in an ecosystem map: what it can do, needs, brings and cares about."""

    id: Identifier
    name: str = Field(min_length=1)
    capabilities: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    resources: float = Field(default=0.0, ge=0.0, description="What it brings, in value "
                                                              "units.")
    values: list[str] = Field(default_factory=list, description="What it stands for.")


class Ecosystem(Strict):
    """The actors around a partnership and a model of what coalitions of them create.

    v(S) = Σ resources + synergy × (needs of members met by another member's capability),
    unless ``coalition_values`` gives v(S) directly; coordination overhead is
    ``coordination_cost`` per pair of members."""

    actors: list[Actor] = Field(min_length=2)
    synergy: float = Field(default=10.0, ge=0.0)
    coordination_cost: float = Field(default=2.0, ge=0.0)
    coalition_values: list[CoalitionValue] = Field(default_factory=list)


class PublicScenario(Strict):
    """The scenario as every party sees it: no organisation's preferences."""

    id: Identifier
    title: str
    description: str = ""
    issues: list[Issue]
    organizations: list[PublicProfile]
    protocol: ProtocolConfig
    fixed: dict[str, TermValue] = Field(default_factory=dict)


class SignatoryKey(Strict):
    """One person who may sign for an organisation, and their Ed25519 public key."""

    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(pattern=r"^[A-Za-z0-9+/]{43}=$",
                            description="Raw 32-byte Ed25519 public key, base64 (as "
                                        "'negotiate keys new' prints it).")


class OrgSignatories(Strict):
    """Who signs for one organisation, and how many of them ratify."""

    keys: list[SignatoryKey] = Field(min_length=1)
    quorum: int = Field(default=1, ge=1, description="Approving signatures of this "
                                                     "organisation needed to ratify.")


class Scenario(Strict):
    """A complete negotiation setting, as read from a scenario file."""

    id: Identifier
    title: str = Field(min_length=1)
    description: str = ""
    issues: list[Issue] = Field(min_length=1)
    organizations: list[Organization] = Field(min_length=2)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    fixed: dict[str, TermValue] = Field(
        default_factory=dict,
        description="Terms settled before this negotiation (e.g. kept from an earlier "
                    "agreement): issue id -> its value. Every offer and agreement keeps them.")
    guardrails: GuardrailPolicy = Field(default_factory=GuardrailPolicy)
    coalition_values: list[CoalitionValue] = Field(
        default_factory=list,
        description="Optional cooperative game: the value each coalition creates. When given, "
                    "fair benefit shares follow the Shapley value instead of contributions.")
    ecosystem: Ecosystem | None = Field(default=None, description="Optional map of the "
                                                                  "actors around the deal.")
    signatories: dict[str, OrgSignatories] = Field(
        default_factory=dict,
        description="Who may sign off an agreement for each organisation (public keys). "
                    "When given, an agreement is ratified only by valid Ed25519 signatures "
                    "of every organisation; without it, sign-offs are not attributable.")

    def public(self) -> PublicScenario:
        return PublicScenario(
            id=self.id,
            title=self.title,
            description=self.description,
            issues=self.issues,
            organizations=[org.public() for org in self.organizations],
            protocol=self.protocol,
            fixed=self.fixed,
        )

    @property
    def party_ids(self) -> list[str]:
        return [org.id for org in self.organizations]

    def organization(self, org_id: str) -> Organization:
        for org in self.organizations:
            if org.id == org_id:
                return org
        raise KeyError(org_id)


# --- offers and actions --------------------------------------------------------------------


class Offer(Strict):
    """A complete set of terms: one value for every issue."""

    terms: dict[str, TermValue]


class Propose(Strict):
    """Put a full set of terms on the table, replacing the standing offer."""

    kind: Literal["propose"] = "propose"
    offer: Offer
    rationale: str = Field(min_length=1, description="Why this offer, now, in one sentence.")
    message: str | None = Field(default=None, description="Optional note to the other parties.")


class Accept(Strict):
    """Accept the standing offer as it is."""

    kind: Literal["accept"] = "accept"
    rationale: str = Field(min_length=1)
    message: str | None = None


class WalkAway(Strict):
    """Leave the negotiation; the run ends without agreement."""

    kind: Literal["walk_away"] = "walk_away"
    rationale: str = Field(min_length=1)
    message: str | None = None


Action = Annotated[Propose | Accept | WalkAway, Field(discriminator="kind")]
ActionKind = Literal["propose", "accept", "walk_away"]
#: Validates a move given as plain data (a transcript line, an interrupt's answer).
ACTION: TypeAdapter[Action] = TypeAdapter(Action)


class Agreement(Strict):
    """Terms every party accepted."""

    terms: dict[str, TermValue]
    proposer: str
    round: int
    parties: list[str]
