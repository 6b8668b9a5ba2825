"""Finance partitions: one per shop and UTC day, so a day can be rerun or backfilled alone."""

import dagster as dg

from pipelines.shops import shop_partitions

# TODO(finance-timezone): days are UTC days; a shop's settlement day in its own timezone needs
# per-shop windows (ShopProfile.timezone) before reports may follow local days.
# A recent start keeps shops x days well under Dagster's advised 100k partitions per asset.
FINANCE_START_DATE = "2026-01-01"

finance_days_partitions_def = dg.DailyPartitionsDefinition(start_date=FINANCE_START_DATE)

finance_partitions_def = dg.MultiPartitionsDefinition(
    {"date": finance_days_partitions_def, "shop": shop_partitions}
)


def finance_partition_key(day: str, shop_id: str) -> dg.MultiPartitionKey:
    """Always build keys this way: the string form orders dimensions alphabetically."""
    return dg.MultiPartitionKey({"date": day, "shop": shop_id})
