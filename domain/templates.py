"""Built-in playbook templates: pure data, offered when a playbook is created.

A template is a starting point, never a link: creating a playbook copies its
stages, and later changes to a template do not reach existing playbooks.
Step commands are real Mattermost slash commands (``/header`` is built in) or
Command Center's own, so that "Run" works on a fresh server.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .errors import COMMAND
from .playbooks import DEFAULT_STAGE_TITLE, StageDraft, StepDraft


class Template(BaseModel):
    """A named, ready-made set of stages with a suggested description and channel visibility."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    title: str
    summary: str  # one line for lists and dialog options
    description: str = ""
    create_public_channel: bool = True
    stages: tuple[StageDraft, ...]

    @property
    def step_count(self) -> int:
        """Total number of steps over all stages."""
        return sum(len(stage.steps) for stage in self.stages)


def _step(title: str, description: str = "", command: str = "") -> StepDraft:
    return StepDraft(title=title, description=description, command=command)


def _stage(title: str, *steps: StepDraft) -> StageDraft:
    return StageDraft(title=title, steps=steps)


BLANK = Template(
    key="blank",
    title="Blank",
    summary="One empty stage; build your own checklist.",
    stages=(_stage(DEFAULT_STAGE_TITLE),),
)

INCIDENT_RESPONSE = Template(
    key="incident-response",
    title="Incident Response",
    summary="General incidents: Triage, Investigation, Resolution.",
    description="A general-purpose response plan: understand the impact, find the cause, fix it and learn from it.",
    stages=(
        _stage(
            "Triage",
            _step("Acknowledge the alert and take the commander role",
                  "Say in the channel that you are on it, so nobody else starts a parallel response."),
            _step("Set the channel header to the incident status",
                  "Keeps everyone who joins later oriented.",
                  "/header 🚨 Incident in progress: see the pinned incident card"),
            _step("Assess customer impact",
                  "Who is affected, since when, and how badly? Check error rates and support tickets."),
            _step("Decide the severity and who else must be involved",
                  "Page the owning team's on-call if the cause is outside your area."),
            _step("Announce the incident to the company",
                  "Lets support and leadership know where to follow along.",
                  f"{COMMAND}announce ~town-square"),
        ),
        _stage(
            "Investigation",
            _step("Check recent deploys and configuration changes",
                  "Most incidents follow a change: look at the last deploys, flags and infrastructure edits."),
            _step("Review dashboards, logs and traces for the affected services"),
            _step("Write down the leading hypothesis in the channel",
                  "One message others can challenge; update it when it changes."),
            _step("Agree on a mitigation (rollback, failover, feature flag)"),
        ),
        _stage(
            "Resolution",
            _step("Apply the fix or mitigation"),
            _step("Confirm recovery with metrics and a customer-facing check"),
            _step("Post a resolution summary in the channel"),
            _step("Schedule the post-incident review",
                  "Within five working days, while memories are fresh."),
            _step("Write the postmortem and file follow-up tasks",
                  "Blameless: what happened, why, what went well, what we change."),
        ),
    ),
)

SECURITY_INCIDENT = Template(
    key="security-incident",
    title="Security Incident",
    summary="Suspected breach or vulnerability; private channel by default.",
    description="For suspected breaches, leaked credentials and exploited vulnerabilities. "
                "The channel is private: add people on a need-to-know basis.",
    create_public_channel=False,
    stages=(
        _stage(
            "Detection & Analysis",
            _step("Record how the issue was detected and by whom",
                  "Keep the original alert, report or message; do not forward it outside this channel."),
            _step("Determine the scope: systems, data and accounts involved"),
            _step("Classify the severity and whether personal data may be affected",
                  "Personal data may start legal notification deadlines (e.g. 72 hours under GDPR)."),
            _step("Preserve evidence before changing anything",
                  "Snapshot disks, export logs, note timestamps in UTC."),
        ),
        _stage(
            "Containment",
            _step("Revoke or rotate exposed credentials and tokens"),
            _step("Isolate affected hosts or disable compromised accounts"),
            _step("Block malicious IPs, domains or sessions"),
            _step("Confirm the attacker no longer has access"),
        ),
        _stage(
            "Eradication & Recovery",
            _step("Remove the root cause (patch, configuration fix, malware removal)"),
            _step("Restore affected systems from known-good sources"),
            _step("Monitor closely for signs of recurrence"),
        ),
        _stage(
            "Post-Incident",
            _step("Notify affected users, customers or authorities as required",
                  "Coordinate wording with legal and communications."),
            _step("Write the incident report and lessons learned"),
            _step("File follow-up tasks for hardening and detection gaps"),
        ),
    ),
)

SERVICE_OUTAGE = Template(
    key="service-outage",
    title="Service Outage",
    summary="A service is down or unusable for customers.",
    description="A customer-facing service is down. Restore service first, find the root cause second.",
    stages=(
        _stage(
            "Respond",
            _step("Confirm the outage from outside (status checks, synthetic tests)"),
            _step("Set the channel header to the outage status",
                  command="/header 🔴 Outage in progress: updates every 30 minutes"),
            _step("Post on the public status page",
                  "Acknowledge the outage even before the cause is known."),
            _step("Page the owning team's on-call engineer"),
        ),
        _stage(
            "Restore",
            _step("Roll back the last deploy if it correlates with the start"),
            _step("Fail over or scale out the affected component"),
            _step("Verify recovery with real traffic and error rates"),
            _step("Update the status page: monitoring the fix"),
        ),
        _stage(
            "Review",
            _step("Mark the status page incident resolved"),
            _step("Write the timeline and root cause analysis"),
            _step("Agree on follow-up actions and owners"),
        ),
    ),
)

CUSTOMER_DEGRADATION = Template(
    key="customer-degradation",
    title="Customer-facing Degradation",
    summary="Slow or partly broken features; customers notice, nothing is fully down.",
    description="Performance or partial functionality problems that customers notice, such as slow pages, "
                "failing payments for one provider, or a broken feature.",
    stages=(
        _stage(
            "Assess",
            _step("Quantify the degradation (latency, error rate, affected share of users)"),
            _step("Identify affected customer segments and regions"),
            _step("Brief the support team with a holding answer for customers"),
        ),
        _stage(
            "Mitigate",
            _step("Disable or degrade the offending feature behind its flag"),
            _step("Shed or reroute load away from the slow dependency"),
            _step("Confirm the metrics are back within their objectives"),
        ),
        _stage(
            "Follow-up",
            _step("Tell support and affected customers it is resolved"),
            _step("Review alert thresholds: should this have paged sooner?"),
            _step("File the follow-up work with owners and dates"),
        ),
    ),
)

#: Every built-in template, in the order they are offered.
TEMPLATES: tuple[Template, ...] = (
    BLANK, INCIDENT_RESPONSE, SECURITY_INCIDENT, SERVICE_OUTAGE, CUSTOMER_DEGRADATION,
)

#: The template the create dialog proposes.
DEFAULT_TEMPLATE = INCIDENT_RESPONSE


def find_template(name: str) -> Template | None:
    """The template whose key or title is ``name`` (case-insensitive), or None."""
    wanted = " ".join(name.split()).lower()
    for template in TEMPLATES:
        if wanted in (template.key, template.title.lower()):
            return template
    return None
