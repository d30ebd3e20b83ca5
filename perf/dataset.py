"""Results in bulk, straight into PostgreSQL (INSERT ... SELECT over generate_series).

Going through POST /contribute would take hours for a million results; this writes the
same rows the contributions service writes (contributor, submission, result), with a
realistic spread: twelve cards, two models, four configurations, out-of-memory failures
where a configuration does not fit the card, version history, a few outliers, a few
withdrawn and rejected results, a year of dates, and one hot pair (Klein 4B on the
RTX 4090) holding most rows. Summaries are then built by the real aggregation.

Signed bodies are short placeholders: no page or API response benchmarked here reads them.
Each row is stamped as if it had arrived at its time (created_at and changed_at), and no
summary has taken it yet (summarized is null), so reconcile sees every group that grew.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from klein_bench.contract.protocol import CURRENT

HOT_MODEL = "flux-2-klein-4b"
HOT_GPU = "rtx-4090"

# Seconds per image at 1024x1024, 4 steps, BF16 resident; board power in watts.
CARDS = {
    "rtx-3090": (2.4, 350),
    "rtx-4070": (2.9, 200),
    "rtx-4070-ti": (2.4, 285),
    "rtx-4080": (1.8, 320),
    "rtx-4090": (1.3, 450),
    "rtx-5060-ti-16gb": (2.9, 180),
    "rtx-5070": (2.3, 250),
    "rtx-5070-ti": (1.9, 300),
    "rtx-5080": (1.6, 360),
    "rtx-5090": (0.95, 575),
    "h100": (0.8, 700),
    "h200": (0.75, 700),
}
# (model slug, share of the rows outside the hot pair, seconds factor)
MODELS = (("flux-2-klein-4b", 0.85, 1.0), ("flux-2-klein-base-4b", 0.15, 12.5))
# (runtime, precision, offload), share, seconds factor, peak allocated MiB
CONFIGURATIONS = (
    (("diffusers", "bf16", "none"), 0.55, 1.0, 17950.0),
    (("diffusers", "bf16", "model"), 0.20, 1.6, 9200.0),
    (("diffusers", "fp8-storage", "none"), 0.15, 0.9, 11400.0),
    (("comfyui", "fp8-storage", "none"), 0.10, 0.85, 11000.0),
)
DRIVERS = ("570.86.16", "575.64.03", "580.82.09", "580.95.05")
DIFFUSERS = ("0.37.0", "0.40.2", "0.42.1")
TORCHES = ("2.8.0+cu128", "2.9.1+cu128", "2.9.1+cu130")


@dataclass
class Ids:
    models: dict[str, int]
    gpus: dict[str, tuple[int, int]]
    configurations: dict[tuple[str, str, str], int]


def catalog_ids() -> Ids:
    with connection.cursor() as cursor:
        cursor.execute("SELECT slug, id FROM benchmarks_imagemodel")
        models = dict(cursor.fetchall())
        cursor.execute("SELECT slug, id, vram_mb FROM benchmarks_gpu")
        gpus = {slug: (pk, vram or 0) for slug, pk, vram in cursor.fetchall()}
        cursor.execute("SELECT runtime, precision, offload, id FROM benchmarks_configuration")
        configurations = {(r, p, o): pk for r, p, o, pk in cursor.fetchall()}
    return Ids(models, gpus, configurations)


def _array(values) -> str:
    """An SQL array literal of numbers or plain ASCII strings (no user input reaches it)."""
    items = ", ".join(f"'{v}'" if isinstance(v, str) else repr(v) for v in values)
    return f"(ARRAY[{items}])"


def _pick(draw: str, shares: list[float]) -> str:
    """1-based index chosen by a uniform draw with these shares."""
    cases, total = [], 0.0
    for index, share in enumerate(shares[:-1], start=1):
        total += share
        cases.append(f"WHEN {draw} < {total!r} THEN {index}")
    return f"(CASE {' '.join(cases)} ELSE {len(shares)} END)"


def next_ids() -> tuple[int, int]:
    """The next free submission/result id and contributor id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM benchmarks_submission")
        (submission,) = cursor.fetchone()
        cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM benchmarks_contributor")
        (contributor,) = cursor.fetchone()
    return submission, contributor


def load(
    count: int,
    *,
    hot_share: float = 0.6,
    hot_configuration: tuple[str, str, str] | None = None,
    contributors: int | None = None,
    fresh: bool = False,
) -> None:
    """Add `count` results. hot_share of them go to the hot pair (spread over the
    configurations, or all in hot_configuration); the rest spread over every card, both
    models and every configuration. They arrived over the past year, or now when fresh."""
    ids = catalog_ids()
    first, first_contributor = next_ids()
    last = first + count - 1
    n_contributors = contributors or max(100, count // 50)
    cards = list(CARDS)
    hot_card = cards.index(HOT_GPU) + 1
    gpu_ids = _array([ids.gpus[slug][0] for slug in cards])
    vram = _array([ids.gpus[slug][1] for slug in cards])
    base = _array([CARDS[slug][0] for slug in cards])
    power = _array([float(CARDS[slug][1]) for slug in cards])
    model_ids = _array([ids.models[m[0]] for m in MODELS])
    model_factor = _array([m[2] for m in MODELS])
    config_ids = _array([ids.configurations[c[0]] for c in CONFIGURATIONS])
    config_factor = _array([c[2] for c in CONFIGURATIONS])
    config_memory = _array([c[3] for c in CONFIGURATIONS])
    config_pick = _pick("r_cfg", [c[1] for c in CONFIGURATIONS])
    if hot_configuration is not None:
        hot_index = [c[0] for c in CONFIGURATIONS].index(hot_configuration) + 1
        hot_config_pick = str(hot_index)
    else:
        hot_config_pick = config_pick
    statements = [
        "SET LOCAL synchronous_commit = off",
        f"""
        INSERT INTO benchmarks_contributor
            (id, key_id, public_key, display_name, created_at, revoked_at, revoked_reason)
        SELECT i, 'perf' || lpad(i::text, 12, '0'), md5(i::text) || md5('k' || i), '',
               now() - interval '400 days', NULL, ''
        FROM generate_series({first_contributor}, {first_contributor + n_contributors - 1}) i
        """,
        f"""
        INSERT INTO benchmarks_submission
            (id, client_submission_id, nonce, body, body_sha256, created_at, received_at,
             status, moderation_reason, response, contributor_id, moderated_at,
             withdrawal_body, withdrawal_reason, withdrawn_at)
        SELECT i, md5('s' || i)::uuid, md5('n' || i), '{{"perf": ' || i || '}}',
               md5('b' || i) || md5('c' || i), t, t,
               CASE WHEN r < 0.005 THEN 'withdrawn' WHEN r < 0.01 THEN 'rejected'
                    ELSE 'accepted' END,
               '', NULL, {first_contributor} + floor(random() * {n_contributors})::int, NULL,
               '', '', CASE WHEN r < 0.005 THEN t END
        FROM (SELECT i, now() - random() * interval '{0 if fresh else 365} days' AS t, random() AS r
              FROM generate_series({first}, {last}) i) s
        """,
        f"""
        INSERT INTO benchmarks_result
            (id, submission_id, contributor_id, model_id, gpu_id, configuration_id,
             protocol_version, protocol_hash, synthetic, outcome, failed_stage, error_message,
             runs, n_runs, seconds_median, seconds_p10, seconds_p90, seconds_mean,
             seconds_stdev, seconds_cv, load_seconds, text_encoding_seconds, denoising_seconds,
             vae_decode_seconds, baseline_device_mb, peak_allocated_mb, peak_reserved_mb,
             peak_process_mb, peak_device_mb, peak_rss_mb, system_ram_mb,
             energy_joules_per_image, driver_version, torch_version, diffusers_version,
             runtime_version, agent_version, drives_display, environment, telemetry,
             image_phash, thumbnail_png, is_outlier, created_at, changed_at)
        SELECT id, id, contributor_id, {model_ids}[mi], {gpu_ids}[gi], {config_ids}[ci],
               '{CURRENT.id}', '{CURRENT.hash}', false, outcome,
               CASE outcome WHEN 'success' THEN ''
                    WHEN 'error' THEN 'other'
                    ELSE (CASE WHEN r_stage < 0.6 THEN 'vae_decode' ELSE 'denoising' END) END,
               CASE outcome WHEN 'success' THEN '' ELSE 'CUDA out of memory.' END,
               CASE outcome WHEN 'success' THEN jsonb_build_array(
                    jsonb_build_object('seconds', s * 1.01), jsonb_build_object('seconds', s),
                    jsonb_build_object('seconds', s * 0.99), jsonb_build_object('seconds', s),
                    jsonb_build_object('seconds', s * 1.02)) ELSE '[]'::jsonb END,
               CASE outcome WHEN 'success' THEN 5 ELSE 0 END,
               ok * s, ok * s * 0.98, ok * s * 1.02, ok * s, ok * s * 0.012, ok * 0.012,
               14.0 + 4 * r_ver, ok * s * 0.05, ok * s * 0.8, ok * s * 0.15,
               400 + 200 * r_ver, mem * (1 + 0.01 * noise),
               mem * (1 + 0.01 * noise) + 1000, mem * (1 + 0.01 * noise) + 1600,
               mem * (1 + 0.01 * noise) + 2000, 3000 + 500 * r_ver, 65536.0,
               ok * s * {power}[gi] * 0.9,
               (ARRAY{list(DRIVERS)})[1 + floor(r_ver * {len(DRIVERS)})::int],
               (ARRAY{list(TORCHES)})[1 + floor(r_ver2 * {len(TORCHES)})::int],
               (ARRAY{list(DIFFUSERS)})[1 + floor(r_ver2 * {len(DIFFUSERS)})::int],
               (ARRAY{list(DIFFUSERS)})[1 + floor(r_ver2 * {len(DIFFUSERS)})::int],
               '0.1.0', r_ver < 0.3, '{{"os": "Linux", "python": "3.11.7"}}'::jsonb,
               '{{}}'::jsonb, 'c3c3e1e1f0f87c3e', NULL, false, t, t
        FROM (
            SELECT *,
                   {base}[gi] * {model_factor}[mi] * {config_factor}[ci]
                       * (1 + 0.08 * noise) * (CASE WHEN r_outlier < 0.005 THEN 4 ELSE 1 END)
                       AS s,
                   CASE WHEN outcome = 'success' THEN 1.0 END AS ok,
                   CASE WHEN outcome = 'success' THEN {config_memory}[ci]
                        ELSE {vram}[gi] - 300 END AS mem
            FROM (
                SELECT *,
                       CASE WHEN {config_memory}[ci] + 1200 <= {vram}[gi]
                            THEN (CASE WHEN r_out < 0.97 THEN 'success'
                                       WHEN r_out < 0.98 THEN 'out_of_memory'
                                       ELSE 'error' END)
                            ELSE (CASE WHEN r_out < 0.97 THEN 'out_of_memory'
                                       ELSE 'error' END) END AS outcome
                FROM (
                    SELECT *,
                           CASE WHEN hot THEN {hot_card}
                                ELSE 1 + floor(r_gpu * {len(cards)})::int END AS gi,
                           CASE WHEN hot THEN 1 ELSE {_pick("r_model", [m[1] for m in MODELS])}
                                END AS mi,
                           CASE WHEN hot THEN {hot_config_pick} ELSE {config_pick} END AS ci
                    FROM (
                        SELECT id, contributor_id, received_at AS t,
                               random() < {hot_share!r} AS hot, random() AS r_model,
                               random() AS r_gpu, random() AS r_cfg, random() AS r_out,
                               random() AS r_stage, random() AS r_ver, random() AS r_ver2,
                               random() AS r_outlier,
                               random() + random() + random() + random() - 2 AS noise
                        FROM benchmarks_submission
                        WHERE id BETWEEN {first} AND {last}
                    ) draws
                ) picks
            ) outcomes
        ) rows
        """,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    with connection.cursor() as cursor:
        for table in ("contributor", "submission", "result"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('benchmarks_{table}', 'id'), "
                f"(SELECT max(id) FROM benchmarks_{table}))"
            )


def analyze() -> None:
    """What autovacuum would have done to a table that grew over a year."""
    with connection.cursor() as cursor:
        for table in ("contributor", "submission", "result", "summary"):
            cursor.execute(f"VACUUM ANALYZE benchmarks_{table}")


def count_results() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM benchmarks_result")
        return cursor.fetchone()[0]
