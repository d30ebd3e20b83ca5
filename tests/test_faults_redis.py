"""Redis and the Celery worker fail while results arrive: nothing accepted is lost, and the
summaries come right again (reconcile, or Celery's redelivery of a task whose worker died).

Real processes: gunicorn with production settings, a Celery worker, and a redis-server of
the test's own that it kills with SIGKILL (memory only, so whatever was queued in it is
lost, as when a broker dies without persistence).
"""

from __future__ import annotations

import os
import signal

import psycopg
import pytest
from klein_bench.contract import stats, wire

from benchmarks.models import Result, Submission, Summary
from tests.factories import result_payload, runs, signed_body
from tests.faults_support import (
    celery_call,
    celery_worker,
    current_database_url,
    free_port,
    pool_processes,
    post_contribution,
    redis_server,
    server_environment,
    wait_until,
    web_server,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SECONDS = (2.0, 2.2, 2.4, 2.6, 2.8, 3.0)


def _bodies(seconds=SECONDS) -> list[bytes]:
    key = wire.SigningKey.generate()
    return [signed_body(result_payload(timings={"runs": runs(s, s, s)}), key) for s in seconds]


def _summary() -> Summary | None:
    return Summary.objects.filter(model__slug="flux-2-klein-4b", gpu__slug="rtx-4090").first()


def _converged(expected: int):
    def check() -> Summary | None:
        summary = _summary()
        return summary if summary is not None and summary.n_results == expected else None

    return check


def test_results_sent_while_redis_is_down_are_all_stored_and_reconcile_brings_the_summary_back(
    tmp_path, catalog
):
    port = free_port()
    with redis_server(tmp_path) as redis:
        env = server_environment(tmp_path, current_database_url(), redis.url, port)
        with web_server(env, port, tmp_path / "web.log") as web:
            first, *during = _bodies()
            assert post_contribution(port, first)[0] == 201

            redis.kill()
            answers = [post_contribution(port, body) for body in during]
            assert all(status == 201 for status, _ in answers), answers
            assert {answer["status"] for _, answer in answers} == {"accepted"}

            redis.start()
        assert "Traceback" not in web.output(), web.output()

        # Every accepted result is stored, exactly once.
        assert (Submission.objects.count(), Result.objects.count()) == (6, 6)
        # The summary tasks died with Redis and no worker ever ran one.
        assert _summary() is None

        with celery_worker(env, tmp_path / "worker.log") as worker:
            celery_call(env, "benchmarks.tasks.reconcile_summaries")
            summary = wait_until(_converged(6), 60, worker, "the reconciled summary")
        assert "Traceback" not in worker.output()

    assert summary.seconds_median == stats.median(SECONDS)
    assert (summary.n_contributors, summary.n_success, summary.verdict) == (1, 6, "runs")


def _lock_summaries() -> psycopg.Connection:
    """A transaction holding the summary table, so a summary update waits mid-task."""
    holder = psycopg.connect(current_database_url())
    holder.execute("LOCK TABLE benchmarks_summary IN ACCESS EXCLUSIVE MODE")
    return holder


def _waiting_on_summaries(holder: psycopg.Connection) -> bool:
    with psycopg.connect(current_database_url(), autocommit=True) as observer:
        row = observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            ("%benchmarks_summary%",),
        ).fetchone()
    return bool(row and row[0])


def test_a_summary_task_whose_pool_process_is_killed_is_redelivered_and_completes(
    tmp_path, catalog
):
    port = free_port()
    with redis_server(tmp_path) as redis:
        env = server_environment(tmp_path, current_database_url(), redis.url, port)
        with (
            celery_worker(env, tmp_path / "worker.log") as worker,
            web_server(env, port, tmp_path / "web.log"),
        ):
            holder = _lock_summaries()
            try:
                [body] = _bodies(seconds=(2.5,))
                assert post_contribution(port, body)[0] == 201
                wait_until(lambda: _waiting_on_summaries(holder), 30, worker, "the task to block")
                [child] = pool_processes(worker)
                os.kill(child, signal.SIGKILL)
                worker.wait_for(r"WorkerLostError|exited with 'signal 9", timeout=30)
            finally:
                holder.rollback()
                holder.close()
            # acks_late + reject_on_worker_lost: the task goes back to the queue and the
            # new pool process runs it; no reconcile needed.
            summary = wait_until(_converged(1), 60, worker, "the redelivered task")
    assert summary.seconds_median == 2.5


def test_after_the_whole_worker_is_killed_mid_task_reconcile_brings_the_summary_back(
    tmp_path, catalog
):
    port = free_port()
    with redis_server(tmp_path) as redis:
        env = server_environment(tmp_path, current_database_url(), redis.url, port)
        with web_server(env, port, tmp_path / "web.log"):
            holder = _lock_summaries()
            try:
                with celery_worker(env, tmp_path / "worker.log") as worker:
                    for body in _bodies(seconds=(2.0, 3.0)):
                        assert post_contribution(port, body)[0] == 201
                    wait_until(lambda: _waiting_on_summaries(holder), 30, worker, "a blocked task")
                    os.killpg(worker.popen.pid, signal.SIGKILL)
                    worker.popen.wait(10)
            finally:
                holder.rollback()
                holder.close()
            assert _summary() is None

            # A new worker: the killed one's task is unacknowledged until Redis's
            # visibility timeout (an hour), so beat's reconcile is what catches up.
            with celery_worker(env, tmp_path / "worker-2.log") as worker:
                celery_call(env, "benchmarks.tasks.reconcile_summaries")
                summary = wait_until(_converged(2), 60, worker, "the reconciled summary")
    assert summary.seconds_median == 2.5
