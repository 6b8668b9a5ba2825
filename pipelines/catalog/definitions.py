"""The catalog domain's Dagster objects; resources are bound in pipelines/definitions.py
(key "metasync" -> MetasyncResource). Asset checks live in the asset bodies (check_specs)."""

import dagster as dg

from pipelines.catalog.assets import catalog_assets
from pipelines.catalog.schedules import catalog_jobs, catalog_schedules

defs = dg.Definitions(assets=catalog_assets, jobs=catalog_jobs, schedules=catalog_schedules)
