"""Kill a write path with SIGKILL at a chosen point, in a forked child, then let the parent rerun.

    outcome = run_until_killed(world, "push", "acme", Checkpoint("graph_after", 3))
    outcome.killed, outcome.hits      # died at the checkpoint / how many it passed otherwise

Checkpoints: `graph_before` (the Nth Graph request is about to leave: a crash between the writes
of a batch run), `graph_after` (Meta answered the Nth request, nothing recorded locally yet),
`db_commit` (the Nth metasync or OMS transaction did its work and is about to commit). The child
is a fork of the test process, which has imported everything and serves the sandbox in a thread,
so a child costs a few milliseconds: it opens its own database engines and Graph clients, runs
the path (no Dagster), and talks to the parent's sandbox over loopback.
"""

import contextlib
import gc
import os
import signal
from dataclasses import dataclass

from resources.db import MetasyncDatabase
from resources.meta.transport import GraphClient
from tests.harness.world import World

CHECKPOINTS = ("graph_before", "graph_after", "db_commit")
FAILED = 3  # the child's exit code when the path raised (a failure under faults: rerun it)
HITS_BASE = 10  # a child that finished exits with HITS_BASE + checkpoints passed (capped)


@dataclass(frozen=True)
class Checkpoint:
    where: str
    nth: int


@dataclass(frozen=True)
class Outcome:
    killed: bool
    failed: bool = False
    hits: int = 0  # checkpoints passed by a child that finished: bounds the next choice of nth


def _install(checkpoint: Checkpoint, world: World) -> list[int]:
    hits = [0]

    def hit() -> None:
        hits[0] += 1
        if hits[0] == checkpoint.nth:
            os.kill(os.getpid(), signal.SIGKILL)

    send_once, begin = GraphClient._send_once, MetasyncDatabase.begin

    def send_before(self, *args, **kwargs):
        hit()
        return send_once(self, *args, **kwargs)

    def send_after(self, *args, **kwargs):
        result = send_once(self, *args, **kwargs)
        hit()
        return result

    @contextlib.contextmanager
    def begin_then_die(self):
        with begin.__wrapped__(self) as connection:
            yield connection
            hit()  # the transaction's work is done; the commit has not happened

    @contextlib.contextmanager
    def oms_begin_then_die(engine_begin):
        with engine_begin() as connection:
            yield connection
            hit()

    if checkpoint.where == "graph_before":
        GraphClient._send_once = send_before
    elif checkpoint.where == "graph_after":
        GraphClient._send_once = send_after
    else:
        MetasyncDatabase.begin = begin_then_die
        # OMS writes (intake's imports, acks) commit through the adapter's engine.
        engine_begin = world.oms.engine.begin
        world.oms.engine.begin = lambda: oms_begin_then_die(engine_begin)
    return hits


def run_until_killed(world: World, path: str, shop_id: str, checkpoint: Checkpoint) -> Outcome:
    """Run one write path in a forked child that dies at `checkpoint`."""
    world.metasync.db().dispose()  # a forked child must not share pooled connections
    world.oms.dispose()
    gc.freeze()  # the child's collector leaves the parent's objects alone: no copy-on-write storm
    pid = os.fork()
    if pid == 0:  # the child: fresh engines, the hook, the path; never returns
        code = FAILED
        try:
            child = World(world.workdir, world.sandbox_url, world.products, list(world.shops))
            child.metasync.db()  # schema checks are not crash points
            hits = _install(checkpoint, child)
            child.run(path, shop_id)
            code = HITS_BASE + min(hits[0], 200)
        except BaseException:  # a failure under faults is fine; the parent reruns
            code = FAILED
        os._exit(code)
    gc.unfreeze()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Outcome(killed=os.WTERMSIG(status) == signal.SIGKILL)
    code = os.WEXITSTATUS(status)
    return Outcome(killed=False, failed=code < HITS_BASE, hits=max(code - HITS_BASE, 0))
