"""The ops domain's Dagster objects. Resources are bound by pipelines/definitions.py:
"metasync" -> MetasyncResource, "alerts" -> AlertResource (pipelines/ops/alerts.py)."""

import dagster as dg

from pipelines.ops.assets import shop_health, shop_health_job, shop_health_schedule
from pipelines.ops.sensors import (
    catalog_staleness_sensor,
    finance_lag_sensor,
    order_ack_sla_sensor,
    run_failure_alert_sensor,
    token_state_sensor,
)

defs = dg.Definitions(
    assets=[shop_health],
    jobs=[shop_health_job],
    schedules=[shop_health_schedule],
    sensors=[
        run_failure_alert_sensor,
        catalog_staleness_sensor,
        order_ack_sla_sensor,
        finance_lag_sensor,
        token_state_sensor,
    ],
)
