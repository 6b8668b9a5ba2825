"""The orders domain's Dagster objects. Resources are bound by pipelines/definitions.py:
"metasync" -> MetasyncResource, "oms" -> OmsResource (pipelines/orders/resources.py)."""

import dagster as dg

from pipelines.orders.checks import order_ack_backlog, order_sla_job, order_sla_schedule
from pipelines.orders.jobs import ingest_orders_job
from pipelines.orders.schedules import created_orders_sweep_schedule
from pipelines.orders.sensors import new_orders_sensor

defs = dg.Definitions(
    assets=[order_ack_backlog],
    jobs=[ingest_orders_job, order_sla_job],
    schedules=[created_orders_sweep_schedule, order_sla_schedule],
    sensors=[new_orders_sensor],
)
