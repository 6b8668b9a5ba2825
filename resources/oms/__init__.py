"""The reference order management system (OMS): its schema, its data and its adapter."""

from resources.oms.adapter import OmsAdapter
from resources.oms.models import EventLine, OmsError, OmsOrder, OrderDraft, OrderSource

__all__ = ["EventLine", "OmsAdapter", "OmsError", "OmsOrder", "OrderDraft", "OrderSource"]
