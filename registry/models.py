"""Every model, imported in one place so that Alembic and `flask shell` see the whole schema."""

from registry.agreements.models import Agreement, Indicator, IndicatorEntry, Target
from registry.assets.models import Asset, AssetCheck, AssetSource, AssetStateChange
from registry.auth.models import LoginThrottle, User
from registry.closing.models import Confirmation, QuarterReport, ReportStep, ReportVersion, UnlockRequest
from registry.counties.models import Unit
from registry.disclosure.models import Complaint, Notice, NoticeItem, Posting, PublicHit
from registry.evidence.models import Attachment
from registry.exchanges.models import Exchange
from registry.findings.models import Proposal
from registry.kernel.audit.models import AuditEvent
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.versions import DataVersion
from registry.pairings.models import Pairing, Programme
from registry.placements.models import Person, Placement, PlacementCell, PlacementMonth, PlacementMonthSpan
from registry.problems.models import Problem, ProblemLink, ProblemStep, ProgressEntry
from registry.projects.models import FundTransaction, Project, ProjectFunds, StatusChange
from registry.purchases.models import Channel, Purchase, PurchaseTotals
from registry.reports.models import QuarterNarrative
from registry.tasks.models import Job, Notification, NotificationSetting

__all__ = [
    "Agreement",
    "Asset",
    "AssetCheck",
    "AssetSource",
    "AssetStateChange",
    "Attachment",
    "AuditEvent",
    "Channel",
    "Complaint",
    "Confirmation",
    "DataVersion",
    "Exchange",
    "FundTransaction",
    "Indicator",
    "IndicatorEntry",
    "Job",
    "Notice",
    "NoticeItem",
    "LoginThrottle",
    "Notification",
    "NotificationSetting",
    "Pairing",
    "Person",
    "Placement",
    "Posting",
    "PlacementCell",
    "PlacementMonth",
    "PlacementMonthSpan",
    "Problem",
    "ProblemLink",
    "ProblemStep",
    "Programme",
    "ProgressEntry",
    "Proposal",
    "Project",
    "Purchase",
    "QuarterLock",
    "QuarterNarrative",
    "QuarterReport",
    "ReportStep",
    "ReportVersion",
    "ProjectFunds",
    "PublicHit",
    "PurchaseTotals",
    "StatusChange",
    "Target",
    "Unit",
    "UnlockRequest",
    "User",
]
