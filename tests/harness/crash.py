"""Kill a write path with SIGKILL at a chosen point, in a forked child, then let the parent rerun.

    killed = run_until_killed(world, "push", "acme", Checkpoint("graph_after", 3))

Checkpoints: `graph_before` (the Nth Graph request is about to leave: a crash between the writes
of a batch run), `graph_after` (Meta answered the Nth request, nothing recorded locally yet),
`db_commit` (the Nth metasync transaction did its work and is about to commit). The child is a
fork of the test process, so it starts in milliseconds; it opens its own database engines and
Graph clients, and talks to the sandbox the parent serves.
"""

import contextlib
import os
import signal
from dataclasses import dataclass

from resources.db import MetasyncDatabase
from resources.meta.transport import GraphClient
from tests.harness.world import World

CHECKPOINTS = ("graph_before", "graph_after", "db_commit")


@dataclass(frozen=True)
class Checkpoint:
    where: str
    nth: int


def _install(checkpoint: Checkpoint) -> None:
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

    if checkpoint.where == "graph_before":
        GraphClient._send_once = send_before
    elif checkpoint.where == "graph_after":
        GraphClient._send_once = send_after
    else:
        MetasyncDatabase.begin = begin_then_die


def run_until_killed(world: World, path: str, shop_id: str, checkpoint: Checkpoint) -> bool:
    """Run one write path in a forked child that dies at `checkpoint`; True if it was killed."""
    pid = os.fork()
    if pid == 0:  # the child: fresh engines, the hook, the path; never returns
        code = 0
        try:
            child = World(world.workdir, world.sandbox_url, shops=list(world.shops))
            _install(checkpoint)
            child.run(path, shop_id)
        except BaseException:  # a failure under faults is fine; the parent reruns
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
