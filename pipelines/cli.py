"""`metasync`: the command line for engineers and the demo.

metasync demo                       # the main job end to end against the sandbox
metasync sandbox --port 8765        # the Meta Graph API sandbox in the foreground
metasync shops add ...              # register a shop (token read from an env var or stdin)
metasync catalog render --source shopify_csv:products.csv --currency EUR
metasync issues --shop acme         # open seller issues
metasync finance report --shop acme --month 2026-11 --out report.csv
metasync status                     # per-shop health
"""

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from pipelines.catalog.cli import iana_timezone
from resources.settings import get_settings

logger = logging.getLogger("metasync.cli")


class _UserFacingGroup(click.Group):
    """Problems a user can fix (an unknown shop, an unreadable export, a refused token, a bad
    database URL, an invalid value, a path that is a folder, missing or not allowed) end a command
    with their message, not a traceback (--verbose logs the traceback too); anything else still
    raises."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _user_fixable_errors() as problem:
            logger.debug("the command stopped", exc_info=True)
            raise click.ClickException(_one_line(problem)) from None
        except _PATH_ERRORS as problem:
            if problem.filename is None:  # not about a path the user gave: a bug, keep it loud
                raise
            logger.debug("the command stopped", exc_info=True)
            raise click.ClickException(_path_problem(problem)) from None


# OSErrors that say what is wrong with a path (a user's --out, --state-file, export, state folder).
_PATH_ERRORS = (
    FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
)  # fmt: skip


def _path_problem(problem: OSError) -> str:
    paths = " -> ".join(str(p) for p in (problem.filename, problem.filename2) if p is not None)
    return f"{paths}: {problem.strerror or type(problem).__name__}"


def _user_fixable_errors() -> tuple[type[Exception], ...]:
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, OperationalError

    from resources.meta.errors import GraphError
    from resources.shops import InvalidShop, UnknownShop, VaultError
    from resources.store.base import StoreSourceError

    return (
        UnknownShop, InvalidShop, VaultError, StoreSourceError, GraphError, ValidationError,
        ArgumentError, OperationalError,
    )  # fmt: skip


def _one_line(problem: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(problem, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'value'}: {error['msg']}"
            for error in problem.errors()
        )
    return str(problem).splitlines()[0] if str(problem) else type(problem).__name__


@click.group(cls=_UserFacingGroup, invoke_without_command=True)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """metasync: sync shops' catalogs, orders and finance with Meta's Commerce APIs."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO; keep it for --verbose.
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)


@main.command()
@click.option("--port", default=8765, show_default=True, type=int)
@click.option(
    "--state-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Persist the sandbox's state here so it survives restarts.",
)
@click.option(
    "--admin/--no-admin",
    default=False,
    show_default=True,
    help="Serve the admin API under /_sandbox (loopback only).",
)
def sandbox(port: int, state_file: Path | None, admin: bool) -> None:
    """Run the Meta Graph API sandbox on 127.0.0.1."""
    from sandbox.server import serve_forever

    click.echo(f"Meta Graph API sandbox on http://127.0.0.1:{port} (Ctrl-C stops it)")
    serve_forever(port, state_file, admin=admin)


@main.group()
def shops() -> None:
    """Manage the shop registry."""


def _iso_currency(_context, _param, code: str) -> str:
    from resources.currencies import unknown_currency_problem

    problem = unknown_currency_problem(code)
    if problem:
        raise click.BadParameter(problem)
    return code


@shops.command("add")
@click.option("--id", "shop_id", required=True, help="Slug: lowercase letters, digits, - or _.")
@click.option("--name", required=True)
@click.option("--catalog-id", required=True)
@click.option("--cms-id", default=None, help="Commerce merchant settings id.")
@click.option("--page-id", default=None)
@click.option("--pixel-id", default=None)
@click.option("--currency", required=True, callback=_iso_currency, help="ISO 4217 code, e.g. EUR.")
@click.option("--timezone", default="UTC", show_default=True, callback=iana_timezone)
@click.option("--source", required=True, help="KIND:LOCATION, e.g. shopify_csv:/data/acme.csv")
@click.option("--onsite-orders", is_flag=True, help="The shop uses Meta checkout.")
@click.option("--offers", is_flag=True, help="The store is the source of truth for discounts.")
@click.option(
    "--admin-url-template",
    default=None,
    help="Link to a product in the store's admin, with {retailer_id}.",
)
@click.option(
    "--storefront-url-template",
    default=None,
    help="A product's page on the storefront, e.g. https://acme.example/products/{handle} "
    "(Meta needs a link for every item when the export has none).",
)
@click.option("--brand", default=None, help="Brand for products whose store gives none.")
@click.option(
    "--token-env",
    default="METASYNC_SHOP_TOKEN",
    show_default=True,
    help="Environment variable holding the system-user token (else read from stdin).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Overwrite a shop already registered under this id: every setting comes from this "
    "command (one not given resets to its default) and the shop becomes active.",
)
def shops_add(
    shop_id,
    name,
    catalog_id,
    cms_id,
    page_id,
    pixel_id,
    currency,
    timezone,
    source,
    onsite_orders,
    offers,
    admin_url_template,
    storefront_url_template,
    brand,
    token_env,
    replace,
) -> None:
    """Register a shop. The token is never taken as an argument (it would land in shell history).
    An id already registered is refused unless --replace is given."""
    from resources.onboarding import register_from_install
    from resources.shops import ShopRegistry, UnknownShop

    kind, _, location = source.partition(":")
    if not location:
        raise click.BadParameter("expected KIND:LOCATION", param_hint="--source")
    registry = ShopRegistry.from_settings()
    try:
        registry.get(shop_id)
        exists = True
    except UnknownShop:
        exists = False
    if exists and not replace:
        raise click.ClickException(
            f"shop {shop_id} already exists; `metasync shops add --replace ...` overwrites its "
            f"whole registration (settings not given reset to defaults), `metasync shops "
            f"set-token {shop_id}` only rotates its token"
        )
    token = os.environ.get(token_env) or click.prompt("System-user token", hide_input=True)
    install = {"catalog_id": catalog_id, "cms_id": cms_id, "page_id": page_id, "pixel_id": pixel_id}
    profile = register_from_install(
        registry,
        shop_id=shop_id,
        name=name,
        install=install,
        token=token,
        currency=currency,
        timezone=timezone,
        source_kind=kind,
        source_location=location,
        onsite_orders=onsite_orders,
        offers=offers,
        admin_url_template=admin_url_template,
        storefront_url_template=storefront_url_template,
        default_brand=brand,
    )
    click.echo(
        f"shop {profile.shop_id} {'replaced' if exists else 'registered'} "
        f"({', '.join(profile.capabilities) or 'catalog'})"
    )


@shops.command("list")
def shops_list() -> None:
    """List registered shops and their status."""
    from resources.shops import ShopRegistry

    registered = ShopRegistry.from_settings().list_shops()
    if not registered:
        click.echo("no shops registered; add one with `metasync shops add`", err=True)
    for shop in registered:
        reason = f" ({shop.status_reason})" if shop.status_reason else ""
        click.echo(
            f"{shop.shop_id:20} {shop.status}{reason}  catalog {shop.catalog_id}  "
            f"{shop.currency}  {shop.source_kind}:{shop.source_location}"
        )


@shops.command("set-token")
@click.argument("shop_id")
@click.option("--token-env", default="METASYNC_SHOP_TOKEN", show_default=True)
def shops_set_token(shop_id: str, token_env: str) -> None:
    """Rotate a shop's token; a shop paused for re-authentication resumes."""
    from resources.shops import ShopRegistry

    token = os.environ.get(token_env) or click.prompt("New system-user token", hide_input=True)
    ShopRegistry.from_settings().replace_token(shop_id, token)
    click.echo(f"shop {shop_id}: token replaced, status active")


@shops.command("pause")
@click.argument("shop_id")
@click.option("--reason", required=True)
def shops_pause(shop_id: str, reason: str) -> None:
    """Pause a shop: schedules and sensors skip it, showing the reason."""
    from resources.shops import ShopRegistry, ShopStatus

    ShopRegistry.from_settings().set_status(shop_id, ShopStatus.PAUSED, reason)
    click.echo(f"shop {shop_id}: paused")


@shops.command("resume")
@click.argument("shop_id")
def shops_resume(shop_id: str) -> None:
    """Resume a paused shop: schedules and sensors run it again."""
    from resources.shops import ShopRegistry, ShopStatus

    ShopRegistry.from_settings().set_status(shop_id, ShopStatus.ACTIVE, None)
    click.echo(f"shop {shop_id}: active")


@main.command()
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Use a real Shopify or WooCommerce export instead of generated data.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="The demo's own folder, wiped and rebuilt on every run; a folder with other files is "
    "refused (default: .metasync/demo).",
)
def demo(catalog_path: Path | None, workdir: Path | None) -> None:
    """Run the main job end to end against the sandbox and print a per-shop summary."""
    from pipelines.demo import DemoInputError, demo_folder, run_demo

    try:
        summary = run_demo(catalog_path=catalog_path, workdir=workdir or demo_folder())
    except DemoInputError as refused:
        raise click.ClickException(str(refused)) from None
    if workdir is not None:
        summary.ui_command = f"metasync dev --workdir {workdir}"
    click.echo(summary.render())
    sys.exit(0 if summary.ok else 1)


@main.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="The demo folder whose state to open (default: .metasync/demo).",
)
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port.")
def dev(workdir: Path | None, port: int) -> None:
    """Open the Dagster UI on the demo's state, with the sandbox serving its saved state."""
    import subprocess

    from pipelines.demo import demo_folder, dev_serving, serving_for_dev
    from resources.settings import demo_environment
    from sandbox.server import SandboxServer, interrupt_on_terminate

    workdir = (workdir or demo_folder()).resolve()
    environment = demo_environment(workdir)
    if not environment:
        raise click.ClickException(f"no demo state in {workdir}: run `make demo` first")
    if (pid := dev_serving(workdir)) is not None:
        raise click.ClickException(f"`metasync dev` (process {pid}) already serves {workdir}")
    os.environ.update(environment)
    get_settings.cache_clear()
    sandbox_port = int(environment["METASYNC_GRAPH_BASE_URL"].rsplit(":", 1)[1])

    with (
        serving_for_dev(workdir),
        SandboxServer(port=sandbox_port, admin=True, state_file=workdir / "sandbox.pickle"),
    ):
        click.echo(
            f"sandbox on {environment['METASYNC_GRAPH_BASE_URL']}; "
            f"Dagster UI on http://127.0.0.1:{port}"
        )
        command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
        interrupt_on_terminate()
        dagster_dev = subprocess.Popen(command, preexec_fn=_default_stop_signals)
        try:
            dagster_dev.wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: let dagster dev stop its own processes
            _stop_gracefully(dagster_dev)


def _default_stop_signals() -> None:
    """In the child before exec: SIGINT and SIGTERM at their defaults, even when this process
    was started with them ignored, so dagster dev and its processes can be stopped."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _stop_gracefully(process, seconds: float = 30) -> None:
    import signal
    import subprocess

    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@main.group()
def finance() -> None:
    """Finance reports for sellers' accountants."""


@finance.command("report")
@click.option("--shop", "shop_id", required=True)
@click.option("--month", required=True, help="YYYY-MM")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="CSV file to write, in a folder that exists; - writes to standard output.",
)
def finance_report(shop_id: str, month: str, out_path: Path) -> None:
    """Write the month's settlement and tax report as CSV."""
    from pipelines.finance.report import finance_report_rows, month_bounds, write_finance_csv
    from resources.db import MetasyncDatabase
    from resources.shops import ShopRegistry, TokenVault

    try:
        month_bounds(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--month'") from None
    to_stdout = out_path == Path("-")
    if not to_stdout:
        _refuse_a_missing_folder(out_path.parent)
    db = MetasyncDatabase.from_settings()
    db.create_schema()
    # An unknown shop is an error, not an empty file.
    ShopRegistry(db, TokenVault.from_settings()).get(shop_id)
    rows = finance_report_rows(db, shop_id, month)
    if to_stdout:
        _to_stdout(lambda: write_finance_csv(rows, sys.stdout))
    else:
        with out_path.open("w", newline="") as handle:
            write_finance_csv(rows, handle)
    target = "standard output" if to_stdout else str(out_path)
    if not rows:
        click.echo(
            f"no settled finance data for {shop_id} in {month}; {target}: the header only",
            err=True,
        )
    else:
        click.echo(
            f"{target}: {len(rows)} rows (settlement and tax) for shop {shop_id}, {month}",
            err=to_stdout,
        )


def _to_stdout(write: Callable[[], None]) -> None:
    """Run `write` on standard output; a reader that stops early (`| head`) ends the command
    quietly, as other command-line tools do, instead of with a BrokenPipeError traceback."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        try:  # Python flushes stdout again at exit; point it at nothing so that stays quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        sys.exit(0)


def _refuse_a_missing_folder(folder: Path) -> None:
    """The report goes into a folder the user chose; a mistyped one is not created."""
    if not folder.exists():
        raise click.BadParameter(
            f"folder {folder} does not exist; create it first or write elsewhere",
            param_hint="'--out'",
        )
    if not folder.is_dir():
        raise click.BadParameter(f"{folder} is not a folder", param_hint="'--out'")


def _mount_domain_commands() -> None:
    from pipelines.catalog.cli import catalog, issues
    from pipelines.ops.cli import status

    for command in (catalog, issues, status):
        main.add_command(command)


_mount_domain_commands()


if __name__ == "__main__":
    main()
