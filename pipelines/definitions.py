"""The one Definitions object of metasync: every domain's pieces, bound to their resources.

Loaded by `workspace.yaml` (`dagster dev -w workspace.yaml`) and by the tests, so a broken import
anywhere fails loudly here. Domain modules are imported as modules: Dagster refuses a code
location with more than one Definitions object at module scope.
"""

import dagster as dg

from pipelines.catalog import definitions as catalog
from pipelines.finance import definitions as finance
from pipelines.offers import definitions as offers
from pipelines.ops import definitions as ops
from pipelines.ops import scaleout
from pipelines.ops.alerts import AlertResource
from pipelines.orders import definitions as orders
from pipelines.orders.resources import OmsResource
from pipelines.resources import MetasyncResource
from pipelines.shops import shop_registry_sensor
from pipelines.signals import definitions as signals


def build_definitions(*, batch_jobs: bool = True) -> dg.Definitions:
    """Every domain's definitions with their resources. `batch_jobs=False` leaves out the batched
    catalog job, for deployments (Celery) that bind their own variant of it."""
    parts = [catalog.defs, orders.defs, offers.defs, signals.defs, finance.defs, ops.defs]
    if batch_jobs:
        parts.append(scaleout.batch_defs)  # the batched 15-minute variant (off until switched on)
    shared = dg.Definitions(
        sensors=[shop_registry_sensor],
        resources={
            "metasync": MetasyncResource(),
            "oms": OmsResource(),
            "alerts": AlertResource(),
        },
    )
    return dg.Definitions.merge(shared, *parts)


defs = build_definitions()
