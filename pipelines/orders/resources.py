"""The OMS as a Dagster resource: a thin wrapper handing the plain `OmsAdapter` to ops.

    @dg.op
    def import_order(oms: OmsResource): oms.adapter().import_order(draft)

An empty `database_url` falls back to METASYNC_OMS_DATABASE_URL (default: a SQLite file under
the state folder).
"""

import dagster as dg
from pydantic import PrivateAttr

from resources.oms.adapter import OmsAdapter
from resources.settings import get_settings


class OmsResource(dg.ConfigurableResource):
    """The reference OMS database."""

    database_url: str = ""

    _adapter: OmsAdapter | None = PrivateAttr(default=None)

    def adapter(self) -> OmsAdapter:
        if self._adapter is None:
            self._adapter = OmsAdapter(
                self.database_url or get_settings().resolved_oms_database_url()
            )
            self._adapter.create_schema()
        return self._adapter

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._adapter is not None:
            self._adapter.dispose()


__all__ = ["OmsResource"]
