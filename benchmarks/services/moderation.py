"""What moderators do to submissions and keys; the admin's actions call these.

Every change that moves results in or out of the aggregates bumps their changed_at and
queues their groups' summary updates for after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from benchmarks.caching import data_changed
from benchmarks.models import Contributor, Result, SelfReport, Submission, SubmissionStatus
from benchmarks.services.aggregation import GROUP_FIELDS
from benchmarks.tasks import update_summary
from benchmarks.trust_models import ReportStatus


def _touch_results(submission_ids: Iterable[int]) -> None:
    now = timezone.now()
    results = Result.objects.filter(submission_id__in=list(submission_ids))
    groups = set(results.values_list(*GROUP_FIELDS))
    results.update(changed_at=now)
    for group in sorted(groups):
        update_summary.delay_on_commit(*group)


@transaction.atomic
def set_status(submissions: Iterable[Submission], status: str, reason: str) -> int:
    """Reject, flag or restore (accept) submissions with a reason; returns how many changed."""
    if status not in SubmissionStatus.values:
        raise ValueError(f"unknown status {status!r}")
    ids = [s.pk for s in submissions]
    changing = list(
        Submission.objects.select_for_update()
        .filter(pk__in=ids)
        .exclude(status=status)
        .values_list("pk", flat=True)
    )
    Submission.objects.filter(pk__in=changing).update(
        status=status, moderation_reason=reason, moderated_at=timezone.now()
    )
    _touch_results(changing)
    return len(changing)


@transaction.atomic
def revoke(contributors: Iterable[Contributor], reason: str, reject_results: bool = False) -> int:
    """Revoke keys (they can no longer submit or withdraw); optionally reject every
    accepted result they sent. Returns how many keys were newly revoked."""
    ids = [c.pk for c in contributors]
    revoked = Contributor.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )
    if reject_results:
        accepted = Submission.objects.filter(
            contributor_id__in=ids, status=SubmissionStatus.ACCEPTED
        )
        set_status(accepted, SubmissionStatus.REJECTED, f"Key revoked: {reason}")
    return revoked


@transaction.atomic
def set_report_status(reports: Iterable[SelfReport], status: str, reason: str = "") -> int:
    """Approve or reject hand-made reports (only approved ones are shown); how many changed.
    Reports never enter a summary, so only the pages' data version moves."""
    if status not in ReportStatus.values:
        raise ValueError(f"unknown report status {status!r}")
    changed = (
        SelfReport.objects.filter(pk__in=[r.pk for r in reports])
        .exclude(status=status)
        .update(status=status, moderation_reason=reason, moderated_at=timezone.now())
    )
    if changed:
        data_changed()
    return changed
