"""The daily finance job and its schedule: every shop's previous UTC day, at 04:30 UTC."""

import dagster as dg

from pipelines.finance.assets import finance_assets

finance_job = dg.define_asset_job(
    "finance_job",
    selection=dg.AssetSelection.assets(*finance_assets),
    description="Load, reconcile and publish one shop's finance day.",
)

# One run per shop for the latest completed day; the run key is the partition key, so a
# re-evaluated tick launches nothing twice. Backfills run from the asset page in the UI.
finance_schedule = dg.build_schedule_from_partitioned_job(
    finance_job,
    hour_of_day=4,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
