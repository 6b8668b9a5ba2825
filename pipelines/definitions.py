"""The one Definitions object of metasync: every domain's pieces, bound to their resources.

Loaded by `workspace.yaml` (`dagster dev -w workspace.yaml`) and by the tests, so a broken import
anywhere fails loudly here.
"""

import dagster as dg

from pipelines.catalog.definitions import defs as catalog_defs
from pipelines.finance.definitions import defs as finance_defs
from pipelines.offers.definitions import defs as offers_defs
from pipelines.ops.alerts import AlertResource
from pipelines.ops.definitions import defs as ops_defs
from pipelines.orders.definitions import defs as orders_defs
from pipelines.orders.resources import OmsResource
from pipelines.resources import MetasyncResource
from pipelines.shops import shop_registry_sensor
from pipelines.signals.definitions import defs as signals_defs

shared_defs = dg.Definitions(
    sensors=[shop_registry_sensor],
    resources={
        "metasync": MetasyncResource(),
        "oms": OmsResource(),
        "alerts": AlertResource(),
    },
)

defs = dg.Definitions.merge(
    shared_defs, catalog_defs, orders_defs, offers_defs, signals_defs, finance_defs, ops_defs
)
