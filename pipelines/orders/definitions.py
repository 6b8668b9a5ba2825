"""The orders domain's Dagster objects. Resources are bound by pipelines/definitions.py:
"metasync" -> MetasyncResource, "oms" -> OmsResource (pipelines/orders/resources.py).
Offers (store discounts -> Meta offers, orders.md §12) have their own defs in
pipelines/offers/definitions.py."""

import dagster as dg

from pipelines.orders.checks import order_ack_backlog, order_sla_job, order_sla_schedule
from pipelines.orders.jobs import ingest_orders_job, pull_meta_changes_job, push_order_changes_job
from pipelines.orders.schedules import created_orders_sweep_schedule
from pipelines.orders.sensors import meta_changes_sensor, new_orders_sensor, oms_changes_sensor

defs = dg.Definitions(
    assets=[order_ack_backlog],
    jobs=[ingest_orders_job, push_order_changes_job, pull_meta_changes_job, order_sla_job],
    schedules=[created_orders_sweep_schedule, order_sla_schedule],
    sensors=[new_orders_sensor, oms_changes_sensor, meta_changes_sensor],
)
