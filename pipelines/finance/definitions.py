"""The finance domain's Dagster objects. Resources are bound by pipelines/definitions.py:
"metasync" -> MetasyncResource, "oms" -> OmsResource (pipelines/orders/resources.py)."""

import dagster as dg

from pipelines.finance.assets import finance_assets
from pipelines.finance.schedules import finance_job, finance_schedule

defs = dg.Definitions(
    assets=finance_assets,
    jobs=[finance_job],
    schedules=[finance_schedule],
)
