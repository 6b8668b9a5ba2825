"""`make soak`: the reliability harness's long form. Thousands of SIGKILLs at random points of
every write path against a live sandbox, then the exactly-once audit; prints the counts.

    METASYNC_SOAK_KILLS=5000 python -m benchmarks soak
"""

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

from resources.settings import get_settings
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer


def main() -> int:
    kills = int(os.environ.get("METASYNC_SOAK_KILLS", "2000"))
    with tempfile.TemporaryDirectory(prefix="metasync-soak-") as tmp:
        workdir = Path(tmp)
        os.environ["METASYNC_STATE_DIR"] = str(workdir / "state")
        os.environ["METASYNC_VAULT_KEY"] = Fernet.generate_key().decode()
        with SandboxServer(admin=True) as sandbox:
            os.environ["METASYNC_GRAPH_BASE_URL"] = sandbox.url
            get_settings.cache_clear()
            # Imported late: the harness reads settings when its world is built.
            from tests.harness.test_crash import CrashCampaign
            from tests.harness.world import World

            admin = SandboxAdmin(sandbox.url)
            world = World(workdir / "world", sandbox.url)
            world.onboard(admin, ["acme", "bolt"])
            seed = int.from_bytes(os.urandom(2))
            counts = CrashCampaign(world, admin, seed, scratch=workdir).run(kills)
            duplicated, lost = world.audit(sandbox.state)
            lost += counts.finance_mismatches
            admin.close()
    print(f"seed: {seed}")
    print(counts.line())
    print(f"effects duplicated: {len(duplicated)}, rows lost: {len(lost)}")
    for problem in (duplicated + lost)[:20]:
        print(f"  - {problem}")
    return 0 if not duplicated and not lost else 1
