"""``meterai``: the command line of the e-meterai platform, and its first gRPC client.

Run ``meterai --help`` or ``meterai COMMAND --help``. Exit status is 0 on success, 1 when the
platform answered "no" (bad input, no quota, not genuine), 2 on usage errors, 3 when the
platform could not be reached.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import grpc

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai_cli.client import Platform
from meterai_cli.keys import keys
from meterai_cli.output import EXIT_REFUSED, EXIT_UNREACHABLE, emit, fail_rpc, message_dict
from meterai_cli.user_config import DEFAULT_HOME, resolve_home
from meterai_cli.webhooks import webhooks
from meterai_common.config import ConfigError, Ports, Settings
from meterai_common.tls import TlsNotConfigured

__all__ = ["main"]


class Context:
    def __init__(
        self,
        home: Path,
        server: str | None,
        api_key: str | None,
        timeout: float,
        *,
        insecure: bool = False,
        ca: Path | None = None,
        client_certificate: tuple[Path, Path] | None = None,
    ):
        self.home = home
        self.server = server
        self.api_key = api_key
        self.timeout = timeout
        self.insecure = insecure
        self.ca = ca
        self.client_certificate = client_certificate
        self._platform: Platform | None = None

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            try:
                self._platform = Platform.discover(
                    self.home,
                    self.server,
                    self.api_key,
                    self.timeout,
                    insecure=self.insecure,
                    ca=self.ca,
                    client_certificate=self.client_certificate,
                    tls_dir=_settings().tls_dir,
                )
            except (TlsNotConfigured, FileNotFoundError) as error:
                raise click.ClickException(
                    f"cannot set up TLS to the platform: {error}. Pass --ca with the platform's "
                    "ca.crt (its operator has it; 'meterai up' writes it to "
                    "$METERAI_HOME/tls/ca.crt), or --insecure only for a platform started "
                    "with --insecure."
                ) from None
        return self._platform


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    envvar="METERAI_HOME",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Local state of the embedded platform; clients find its address, CA and demo key "
    "here  [default: ./.meterai if present, else the one 'meterai up' recorded in "
    "~/.config/meterai/config.json, else ./.meterai].",
)
@click.option(
    "--server",
    envvar="METERAI_SERVER",
    help="HOST or HOST:PORT of the platform (quota at PORT, stamping +1, signing +2, verify +3).",
)
@click.option("--api-key", envvar="METERAI_API_KEY", help="Reseller API key.")
@click.option("--timeout", default=60.0, show_default=True, help="Deadline of each call, seconds.")
@click.option(
    "--ca",
    envvar="METERAI_CA",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The platform CA to trust  [default: $METERAI_HOME/tls/ca.crt].",
)
@click.option(
    "--client-cert",
    envvar="METERAI_CLIENT_CERT",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Authenticate by a reseller client certificate (PEM) instead of an API key.",
)
@click.option(
    "--client-key",
    envvar="METERAI_CLIENT_KEY",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The private key (PEM) of --client-cert.",
)
@click.option(
    "--insecure",
    is_flag=True,
    envvar="METERAI_INSECURE",
    help="Plaintext gRPC, for a development machine only (servers and clients alike).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    home: Path | None,
    server: str | None,
    api_key: str | None,
    timeout: float,
    ca: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    insecure: bool,
) -> None:
    """e-meterai platform: buy stamp quota, stamp PDFs with a signed e-meterai, verify them.

    \b
    Try it on this machine:
      meterai up                                   # start everything (SQLite, no broker)
      meterai quota buy 3
      meterai stamp letter.pdf --page 1 --rect 400,50,520,170 --out stamped/
      meterai verify stamped/letter.pdf
    """
    if (client_cert is None) != (client_key is None):
        raise click.UsageError("--client-cert and --client-key go together")
    # The platform started here is always this folder's; clients may find one started elsewhere.
    chosen = (home or DEFAULT_HOME).absolute() if ctx.invoked_subcommand == "up" else None
    ctx.obj = Context(
        chosen or resolve_home(home),
        server,
        api_key,
        timeout,
        insecure=insecure,
        ca=ca,
        client_certificate=(client_cert, client_key) if client_cert and client_key else None,
    )


# -- platform processes ---------------------------------------------------------------------
@cli.command()
@click.option("-v", "--verbose", is_flag=True, help="Log every service's activity.")
def up(verbose: bool) -> None:
    """Run the whole platform in this process on embedded defaults (Ctrl-C stops it).

    SQLite and documents under $METERAI_HOME, no broker (an in-process bus), gRPC on
    127.0.0.1, a generated TEST signing certificate, a demo reseller whose key the CLI on this
    machine finds by itself, and a dev payment provider that confirms orders at once.
    """
    from meterai_cli.processes import PlatformAlreadyRunning, run_embedded

    _instrument("platform", verbose, default="text")
    settings = _settings()

    def ready(ports: Ports) -> None:
        click.echo(
            f"meterai is up: quota :{ports.quota}, stamping :{ports.stamping}, "
            f"signing :{ports.signing}, verify :{ports.verify} (state in {settings.home})"
        )
        scheme = "http" if settings.insecure else "https"
        click.echo(f"verification site: {scheme}://127.0.0.1:{ports.web}/v/SERIAL")
        if settings.insecure:
            click.echo("WARNING: plaintext gRPC (--insecure): for this machine only.", err=True)
        else:
            click.echo(f"TLS on every port; clients trust {settings.tls_files.ca_certificate}")
        click.echo(f"payment provider: {settings.payment_provider or 'dev'}")
        click.echo("Try next, in another terminal:")
        click.echo("  meterai quota buy 3")
        click.echo("  meterai stamp YOUR.pdf --page 1 --rect 400,50,520,170 --out stamped/")
        click.echo("  meterai verify stamped/YOUR.pdf")
        click.echo("Ctrl-C stops the platform.")

    try:
        run_embedded(settings, ready)
    except PlatformAlreadyRunning as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(
            f"{error}. Is another platform running on these ports? Stop it, or choose other "
            "ports (QUOTA_PORT, STAMPING_PORT, SIGNING_PORT, VERIFY_PORT; 0 picks free ones)."
        ) from None
    click.echo("meterai stopped.")


@cli.command()
@click.argument("service", type=click.Choice(["quota", "stamping", "signing", "verify", "web"]))
@click.option("-v", "--verbose", is_flag=True)
def serve(service: str, verbose: bool) -> None:
    """Run ONE service in this process (production): configured by DATABASE_URL, AMQP_URL,
    QUOTA_PORT / STAMPING_PORT / SIGNING_PORT / VERIFY_PORT / WEB_PORT, GRPC_HOST, METERAI_* ."""
    from meterai_cli.processes import run_service

    _instrument(service, verbose)
    settings = _settings()
    try:
        run_service(service, settings, lambda port: click.echo(f"{service} serving on port {port}"))
    except (ConfigError, TlsNotConfigured) as error:
        raise click.ClickException(str(error)) from None


@cli.group()
def worker() -> None:
    """Worker processes that scale out: start as many as the load needs, on any host."""


@worker.command("signing")
@click.option("-c", "--concurrency", default=2, show_default=True, help="Signing processes.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker_signing(concurrency: int, loglevel: str) -> None:
    """Consume the signing queue on RabbitMQ (AMQP_URL). SIGTERM finishes work in hand first."""
    if os.environ.get("METRICS_PORT", "").strip():
        import tempfile  # before prometheus_client loads: see meterai_common.metrics

        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="metrics-"))
    from meterai_signing.bootstrap import run_signing_worker

    _instrument("worker-signing", False)
    run_signing_worker(_settings(), concurrency, loglevel)


@worker.command("finishing")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Answers finished at once  [default: METERAI_STAMPING_FINISHERS, 4].",
)
def worker_finishing(concurrency: int | None) -> None:
    """Finish signed documents (embed the signature, commit the stamp) on RabbitMQ (AMQP_URL).

    Run these beside stamping services started with METERAI_STAMPING_FINISHERS=0, so the
    process answering resellers does nothing else; start as many as the load needs.
    """
    from dataclasses import replace

    from meterai_cli.processes import run_finishing_worker

    _instrument("worker-finishing", False)
    settings = _settings()
    if concurrency is not None:
        settings = replace(settings, finishers=concurrency)
    run_finishing_worker(settings, lambda: click.echo("finishing worker ready"))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Health of every service over the gRPC health protocol; exit 0 only when all serve."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    results: dict[str, str] = {}
    for service in ("quota", "stamping", "signing", "verify"):
        try:
            response = health_pb2_grpc.HealthStub(ctx.platform.channel(service)).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=min(ctx.timeout, 5)
            )
            results[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.RpcError as error:
            results[service] = f"UNREACHABLE ({error.code().name})"
    if as_json:
        emit({"services": results, "ok": all(v == "SERVING" for v in results.values())}, True)
    else:
        for service, state in results.items():
            click.echo(f"{service:<9} {ctx.platform.address(service):<22} {state}")
    if not all(v == "SERVING" for v in results.values()):
        sys.exit(EXIT_UNREACHABLE)


cli.add_command(webhooks)


@worker.command("webhooks")
def worker_webhooks() -> None:
    """Deliver webhooks on RabbitMQ (AMQP_URL): consume the job events, post them signed.

    Stamping never waits for it; run one or more (attempts are claimed in the database).
    Back-off and TLS come from METERAI_WEBHOOK_* (see README, Webhooks).
    """
    from meterai_cli.processes import run_webhook_dispatcher
    from meterai_webhooks.config import WebhookSettings

    _instrument("worker-webhooks", False)
    try:
        webhook_settings = WebhookSettings.from_env()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    run_webhook_dispatcher(
        _settings(), webhook_settings, lambda: click.echo("webhook dispatcher ready")
    )


# -- quota ----------------------------------------------------------------------------------
@cli.group()
def quota() -> None:
    """Buy stamp quota and see the balance and ledger."""


def _quota(ctx: Context) -> quota_pb2_grpc.QuotaServiceStub:
    return quota_pb2_grpc.QuotaServiceStub(ctx.platform.channel("quota"))


@quota.command("buy")
@click.argument("quantity", type=click.IntRange(min=1))
@click.option("--idempotency-key", help="Reuse to retry a purchase safely (default: new).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def quota_buy(ctx: Context, quantity: int, idempotency_key: str | None, as_json: bool) -> None:
    """Order QUANTITY e-meterai (Rp 10.000 each)."""
    try:
        order = _quota(ctx).PurchaseQuota(
            quota_pb2.PurchaseQuotaRequest(
                quantity=quantity, idempotency_key=idempotency_key or str(uuid.uuid4())
            ),
            metadata=ctx.platform.metadata(),
            timeout=ctx.timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "purchase failed")
    state = quota_pb2.OrderState.Name(order.state).removeprefix("ORDER_STATE_")
    if as_json:
        emit(message_dict(order), True)
    else:
        rupiah = f"{order.total_idr:,}".replace(",", ".")  # Indonesian thousands separator
        click.echo(f"order {order.order_id}: {order.quantity} e-meterai, Rp {rupiah} — {state}")
        if order.state == quota_pb2.ORDER_STATE_AWAITING_PAYMENT:
            click.echo("Pay it; the quota is credited when the payment is confirmed.")


@quota.command("balance")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def quota_balance(ctx: Context, as_json: bool) -> None:
    """Available, held (stamps in progress) and consumed units."""
    try:
        balance = _quota(ctx).GetBalance(
            quota_pb2.GetBalanceRequest(), metadata=ctx.platform.metadata(), timeout=ctx.timeout
        )
    except grpc.RpcError as error:
        fail_rpc(error, "balance failed")
    data = message_dict(balance, defaults=True)
    if as_json:
        emit(data, True)
    else:
        click.echo(
            f"available {balance.available}  held {balance.held}  consumed {balance.consumed}  "
            f"(purchased {balance.purchased}, refunded {balance.refunded})"
        )


@quota.command("orders")
@click.option("--page-size", default=20, show_default=True)
@click.option("--page-token", default="")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def quota_orders(ctx: Context, page_size: int, page_token: str, as_json: bool) -> None:
    """List orders, newest first (paginated)."""
    try:
        page = _quota(ctx).ListOrders(
            quota_pb2.ListOrdersRequest(page_size=page_size, page_token=page_token),
            metadata=ctx.platform.metadata(),
            timeout=ctx.timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "listing orders failed")
    if as_json:
        emit(message_dict(page), True)
        return
    for order in page.orders:
        state = quota_pb2.OrderState.Name(order.state).removeprefix("ORDER_STATE_")
        click.echo(f"{order.order_id}  {order.quantity:>6}  {state}")
    if page.next_page_token:
        click.echo(f"more: --page-token {page.next_page_token}")


@quota.command("entries")
@click.option("--page-size", default=20, show_default=True)
@click.option("--page-token", default="")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def quota_entries(ctx: Context, page_size: int, page_token: str, as_json: bool) -> None:
    """The ledger statement: every movement of units, newest first (paginated)."""
    try:
        page = _quota(ctx).ListLedgerEntries(
            quota_pb2.ListLedgerEntriesRequest(page_size=page_size, page_token=page_token),
            metadata=ctx.platform.metadata(),
            timeout=ctx.timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "listing ledger entries failed")
    if as_json:
        emit(message_dict(page), True)
        return
    for entry in page.entries:
        click.echo(
            f"{entry.transaction_id}  {entry.kind:<10} {entry.account:<10} "
            f"{entry.amount:>+6}  {entry.reference}"
        )
    if page.next_page_token:
        click.echo(f"more: --page-token {page.next_page_token}")


@quota.command("confirm")
@click.argument("order_id")
@click.option("--reference", required=True, help="The payment gateway's reference.")
@click.option("--amount", type=int, required=True, help="Amount paid, rupiah.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def quota_confirm(ctx: Context, order_id: str, reference: str, amount: int, as_json: bool) -> None:
    """Confirm an order's payment (operator key). Credited once per reference."""
    try:
        order = _quota(ctx).ConfirmPayment(
            quota_pb2.ConfirmPaymentRequest(
                order_id=order_id, payment_reference=reference, amount_idr=amount
            ),
            metadata=ctx.platform.metadata(),
            timeout=ctx.timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "confirmation failed")
    emit(message_dict(order), as_json)


# -- stamping -------------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--page", type=click.IntRange(min=1), default=1, show_default=True, help="1-based page."
)
@click.option(
    "--rect",
    required=True,
    metavar="X0,Y0,X1,Y1",
    help="Seal rectangle in PDF points from the bottom-left of the page as displayed.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the stamped files (same file names).",
)
@click.option(
    "--type", "document_type", default="Dokumen", show_default=True, help="Document type."
)
@click.option("--number", "document_number", default="", help="Document number.")
@click.option("--date", "document_date", default="", help="Document date, YYYY-MM-DD.")
@click.option(
    "--value", "document_value", default=0, type=click.IntRange(min=0), help="Value, rupiah."
)
@click.option(
    "--wait",
    "wait_s",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to follow each job before giving up waiting (the job itself goes on).",
)
@click.option(
    "--password",
    default=None,
    help="Password (user or owner) of encrypted input files; files whose user password is "
    "empty need none. The stamped file keeps its encryption and permissions.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def stamp(
    ctx: Context,
    files: tuple[str, ...],
    page: int,
    rect: str,
    out_dir: Path,
    document_type: str,
    document_number: str,
    document_date: str,
    document_value: int,
    wait_s: float,
    password: str | None,
    as_json: bool,
) -> None:
    """Stamp each FILE with one e-meterai; waits for each and writes OUT/<file name>.

    A FILE may be a directory (every PDF below it, kept in its sub-folders under OUT) or a
    quoted glob pattern ('scans/**/*.pdf'). Prints the serial per file; a document stamped
    before with the same request is reported "already stamped" and not charged again. Exits
    non-zero if any file failed, with the reason per file.
    """
    from meterai_cli.stamp import StampRequest, expand_inputs, stamp_files

    try:
        inputs = expand_inputs(list(files))
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="FILES") from None
    try:
        x0, y0, x1, y1 = (float(v) for v in rect.split(","))
    except ValueError:
        raise click.BadParameter("expected four numbers X0,Y0,X1,Y1", param_hint="--rect") from None
    request = StampRequest(
        page,
        (x0, y0, x1, y1),
        document_type,
        document_number,
        document_date,
        document_value,
        password,
        wait_s,
    )
    results = stamp_files(
        ctx.platform, inputs, out_dir, request, progress=not as_json and len(inputs) > 1
    )
    if as_json:
        emit({"results": [r.as_dict() for r in results]}, True)
    else:
        for result in results:
            if result.ok and result.replayed:
                click.echo(
                    f"{result.source}: already stamped: {result.serial} (not charged again) "
                    f"-> {result.output}"
                )
            elif result.ok:
                click.echo(f"{result.source}: {result.serial} -> {result.output}")
            else:
                click.echo(f"{result.source}: FAILED: {result.error}", err=True)
    if any(r.unreachable for r in results):
        sys.exit(EXIT_UNREACHABLE)
    if not all(r.ok for r in results):
        sys.exit(EXIT_REFUSED)


# -- verification ---------------------------------------------------------------------------
@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--password",
    default=None,
    help="Password (user or owner) of an encrypted FILE.pdf the empty password does not open.",
)
@pass_ctx
def verify(ctx: Context, target: str, as_json: bool, password: str | None) -> None:
    """Check a SERIAL or a stamped FILE.pdf; exit 0 only for a genuine e-meterai."""
    stub = verify_pb2_grpc.VerificationServiceStub(ctx.platform.channel("verify"))
    path = Path(target)
    try:
        if path.suffix.lower() == ".pdf" or path.exists():
            if not path.is_file():
                raise click.BadParameter(f"no such file: {target}")
            answer: Any = stub.VerifyDocument(
                verify_pb2.VerifyDocumentRequest(pdf=path.read_bytes(), password=password or ""),
                timeout=ctx.timeout,
            )
            genuine = answer.genuine
            if not as_json:
                _print_document(path, answer)
        else:
            answer = stub.VerifySerial(
                verify_pb2.VerifySerialRequest(serial=target), timeout=ctx.timeout
            )
            genuine = answer.status == verify_pb2.SERIAL_STATUS_ISSUED
            if not as_json:
                _print_serial(answer)
    except grpc.RpcError as error:
        fail_rpc(error, "verification failed")
    if as_json:
        emit({"genuine": genuine, **message_dict(answer)}, True)
    if not genuine:
        sys.exit(EXIT_REFUSED)


def _print_serial(answer: Any) -> None:
    status = verify_pb2.SerialStatus.Name(answer.status).removeprefix("SERIAL_STATUS_")
    click.echo(f"serial {answer.serial}: {status}")
    if answer.status == verify_pb2.SERIAL_STATUS_ISSUED:
        click.echo(f"  stamped   {answer.stamped_at.ToDatetime().isoformat()}Z")
        if answer.HasField("trusted_time"):
            certified = answer.trusted_time.ToDatetime().isoformat()
            click.echo(f"  trusted   {certified}Z (certified by the timestamp authority)")
        click.echo(f"  document  {answer.document_type}, sha256 {answer.document_digest}")
        click.echo(f"  reseller  {answer.reseller_name}")


def _print_document(path: Path, answer: Any) -> None:
    verdict = "GENUINE e-meterai" if answer.genuine else "NOT a genuine e-meterai"
    click.echo(f"{path.name}: {verdict}")
    if answer.problem:
        click.echo(f"  {answer.problem}")
    for seal in answer.seals:
        status = verify_pb2.SerialStatus.Name(seal.serial_status).removeprefix("SERIAL_STATUS_")
        click.echo(
            f"  seal {seal.serial}: signature {'valid' if seal.signature_valid else 'INVALID'}, "
            f"{'trusted' if seal.trusted else 'UNTRUSTED'}, serial {status}"
            + (f", PAdES {seal.level}" if seal.level else "")
        )
        if seal.HasField("timestamp_time"):
            click.echo(f"    timestamped {seal.timestamp_time.ToDatetime().isoformat()}Z")
        changes = [verify_pb2.Change.Name(c).removeprefix("CHANGE_") for c in seal.changes_after]
        click.echo(f"    changed after the seal: {', '.join(changes).lower() or 'nothing'}")
        if seal.problem:
            click.echo(f"    {seal.problem}")


# -- jobs -----------------------------------------------------------------------------------
@cli.group()
def jobs() -> None:
    """Stamping jobs of this reseller."""


@jobs.command("list")
@click.option("--page-size", default=20, show_default=True)
@click.option("--page-token", default="")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def jobs_list(ctx: Context, page_size: int, page_token: str, as_json: bool) -> None:
    """Jobs, newest first (paginated)."""
    from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc

    try:
        page = stamping_pb2_grpc.StampingServiceStub(ctx.platform.channel("stamping")).ListJobs(
            stamping_pb2.ListJobsRequest(page_size=page_size, page_token=page_token),
            metadata=ctx.platform.metadata(),
            timeout=ctx.timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "listing jobs failed")
    if as_json:
        emit(message_dict(page), True)
        return
    for job in page.jobs:
        state = stamping_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
        click.echo(f"{job.job_id}  {state:<13} {job.serial or '-':<22}  {job.filename}")
    if page.next_page_token:
        click.echo(f"more: --page-token {page.next_page_token}")


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def jobs_cancel(ctx: Context, job_id: str, as_json: bool) -> None:
    """Cancel a job not signed yet; its quota unit is refunded. A signed job cannot be."""
    from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc

    try:
        job = stamping_pb2_grpc.StampingServiceStub(ctx.platform.channel("stamping")).CancelJob(
            stamping_pb2.CancelJobRequest(job_id=job_id),
            metadata=ctx.platform.metadata(),
            timeout=ctx.timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "cancelling failed")
    if as_json:
        emit(message_dict(job), True)
        return
    refund = " (quota unit refunded)" if job.refunded else ""
    click.echo(f"{job.job_id}: {job.failure_code or 'ended'}{refund}")


# -- administration -------------------------------------------------------------------------
@cli.group()
def admin() -> None:
    """Operator commands: most work on the database directly (DATABASE_URL); ``keys`` calls
    the running quota service."""


admin.add_command(keys)


@admin.command("migrate")
def admin_migrate() -> None:
    """Create or upgrade the database schema."""
    from meterai_common.db import create_engine, migrate

    settings = _private_settings()
    migrate(create_engine(settings.database_url))
    click.echo("database is at the latest schema")


@admin.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_reconcile(as_json: bool) -> None:
    """Check every ledger invariant; exit non-zero on any mismatch."""
    from meterai_common.db import create_engine
    from meterai_quota.reconcile import reconcile

    settings = _settings()
    with create_engine(settings.database_url).connect() as conn:
        report = reconcile(conn)
    if as_json:
        emit({"ok": report.ok, "lines": list(report.lines())}, True)
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(0 if report.ok else EXIT_REFUSED)


@admin.command("create-reseller")
@click.argument("name")
@click.option("--parent", default=None, help="Parent reseller id: a sub-account sharing its quota.")
@click.option(
    "--operator", is_flag=True, help="Create an operator key instead (confirms payments)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_create_reseller(name: str, parent: str | None, operator: bool, as_json: bool) -> None:
    """Create a reseller (or operator) and print its API key, shown only this once."""
    from meterai_common.db import create_engine, migrate, transaction
    from meterai_quota import ResellerNameTaken
    from meterai_quota.bootstrap import create_principal

    settings = _private_settings()
    db = create_engine(settings.database_url)
    migrate(db)
    try:
        with transaction(db) as conn:
            reseller_id, key = create_principal(
                conn, name, parent=parent, operator=operator, unique_name=True
            )
    except ResellerNameTaken as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_REFUSED)
    emit({"reseller_id": reseller_id, "api_key": key}, as_json)


@admin.command("init-pki")
@click.option(
    "--key-type",
    type=click.Choice(["rsa2048", "rsa3072", "ecdsa-p256"]),
    default="rsa2048",
    show_default=True,
)
@click.option(
    "--pkcs11",
    "module",
    default=None,
    help="PKCS#11 module: generate the signing key inside a token instead of a PEM file.",
)
@click.option("--token", default=None, help="Label of the token (with --pkcs11).")
@click.option(
    "--pin-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File holding the token's user PIN (else METERAI_PKCS11_PIN[_FILE]).",
)
@click.option(
    "--revocation-url",
    default=None,
    help="Base URL of the test PKI's CRLs and OCSP responder (the TSA process serves them); "
    "the certificates then name it, which PAdES B-LT needs.",
)
def admin_init_pki(
    key_type: str,
    module: str | None,
    token: str | None,
    pin_file: Path | None,
    revocation_url: str | None,
) -> None:
    """Create the platform's TLS CA and service certificates under $METERAI_HOME/tls, and a
    TEST signing PKI under $METERAI_HOME/pki, each only if none is there.

    \b
    The TLS folder (METERAI_TLS_DIR) gets ca.crt and, per identity (quota, stamping, signing,
    verify, web, finishing, admin), NAME.crt / NAME.key, private to this user; distribute each
    identity's pair to the processes that run as it, and ca.crt to every client.
    METERAI_TLS_HOSTS adds the host names clients use to the certificates.
    The signing PKI is for development and tests; production sets METERAI_SIGNING_KEY /
    METERAI_SIGNING_CHAIN / METERAI_TRUST_ROOTS. With --pkcs11 MODULE --token LABEL the signing
    key is generated inside that token (sensitive, not extractable) and certified by the test CA.
    """
    from meterai_common.tls import ensure_platform_tls
    from meterai_signing.pki import ensure_test_pki

    settings = _private_settings()
    files = ensure_platform_tls(settings.tls_dir, settings.tls_hosts)
    click.echo(f"platform TLS CA and certificates in {files.directory} (CA {files.ca_certificate})")
    pki = ensure_test_pki(
        settings.pki_dir,
        key_type=key_type,  # type: ignore[arg-type]
        revocation_url=revocation_url,
    )
    click.echo(f"test PKI in {pki.directory} (root {pki.root_cert.name})")
    if module is not None or token is not None:
        _init_token_key(settings, module, token, pin_file, key_type)


@admin.group("tls")
def admin_tls() -> None:
    """Client certificates for resellers who authenticate by certificate (mTLS)."""


@admin_tls.command("issue-client")
@click.option("--reseller", "reseller_id", required=True, help="The reseller's id.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for RESELLER.crt and RESELLER.key (the key is written 0600).",
)
@click.option(
    "--days", default=397, show_default=True, type=click.IntRange(1, 825), help="Validity."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_tls_issue_client(reseller_id: str, out_dir: Path, days: int, as_json: bool) -> None:
    """Issue a client certificate that authenticates as one reseller, and register it.

    Needs the platform CA's key ($METERAI_HOME/tls/ca.key) and the database. The reseller
    then calls the client-certificate ports with --client-cert/--client-key, no API key.
    """
    import datetime

    import meterai_quota as ledger
    from meterai_common.db import create_engine, run_in_transaction
    from meterai_common.tls import issue_reseller_certificate

    settings = _settings()
    engine = create_engine(settings.database_url)
    try:
        certificate, key, der = issue_reseller_certificate(
            settings.tls_files, reseller_id, validity=datetime.timedelta(days=days)
        )
        try:
            fingerprint = run_in_transaction(
                engine, lambda conn: ledger.register_certificate(conn, reseller_id, der)
            )
        except ledger.QuotaError as error:
            raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{reseller_id}.crt", out_dir / f"{reseller_id}.key"
    cert_path.write_bytes(certificate)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    emit(
        {
            "reseller_id": reseller_id,
            "fingerprint": fingerprint,
            "certificate": str(cert_path),
            "key": str(key_path),
        },
        as_json,
    )


@admin_tls.command("revoke-client")
@click.argument("fingerprint")
def admin_tls_revoke_client(fingerprint: str) -> None:
    """Revoke a reseller's client certificate (by the fingerprint issue-client printed): it
    is refused from the next call on, by every process."""
    import meterai_quota as ledger
    from meterai_common.db import create_engine, run_in_transaction

    engine = create_engine(_settings().database_url)
    try:
        revoked = run_in_transaction(
            engine, lambda conn: ledger.revoke_certificate(conn, fingerprint)
        )
    finally:
        engine.dispose()
    if not revoked:
        raise click.ClickException(f"no registered, unrevoked certificate {fingerprint}")
    click.echo(f"revoked {fingerprint}")


@admin.command("queues")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_queues(as_json: bool) -> None:
    """Backlog, in-flight, dead-lettered jobs, signing workers and the outbox not yet
    published, from the database and the broker."""
    from meterai_common.db import create_engine
    from meterai_common.messaging import (
        DEAD_LETTERS_QUEUE,
        SIGNING_QUEUE,
        STAMPING_EVENTS,
        queue_depths,
    )
    from meterai_common.outbox import oldest_pending_age, pending_count
    from meterai_common.tasks import SIGN_DIGEST_TASK
    from meterai_stamping.adapters.jobs_table import JobRepository

    settings = _settings()
    db = create_engine(settings.database_url)
    with db.connect() as conn:
        counts = JobRepository(conn).count_by_state()
    report: dict[str, Any] = {
        "jobs": counts,
        "outbox": {
            "unpublished": pending_count(db),
            "oldest_unpublished_s": round(oldest_pending_age(db), 1),
        },
        "queues": {},
    }
    if settings.amqp_url:
        try:
            depths = queue_depths(
                settings.amqp_url, (SIGNING_QUEUE, STAMPING_EVENTS.name, DEAD_LETTERS_QUEUE)
            )
        except Exception as error:  # the report is still useful without the broker
            report["broker_error"] = f"{type(error).__name__}: {error}"
        else:
            report["queues"] = {
                d.name: {"ready": d.messages, "consumers": d.consumers} for d in depths
            }
    signing = report["queues"].get(SIGNING_QUEUE, {})
    # Counted in documents, from the database: a signing task carries a batch of documents,
    # so the broker's message counts say how many tasks wait, not how many documents.
    unsent = pending_count(db, names=(SIGN_DIGEST_TASK,))
    report["summary"] = {
        "backlog": counts.get("PREPARED", 0),
        "in_flight": max(counts.get("PREPARED", 0) - unsent, 0),
        "dead_lettered": counts.get("DEAD_LETTERED", 0),
        "signing_workers": signing.get("consumers"),
    }
    if as_json:
        emit(report, True)
        return
    summary = report["summary"]
    click.echo(f"backlog (waiting for a signature)  {summary['backlog']}")
    click.echo(f"sent to signing, not yet answered   {summary['in_flight']}")
    click.echo(f"dead-lettered jobs                  {summary['dead_lettered']}")
    workers = summary["signing_workers"]
    click.echo(f"signing workers (consumers)         {'embedded' if workers is None else workers}")
    outbox = report["outbox"]
    click.echo(
        f"outbox not yet published            {outbox['unpublished']}"
        f" (oldest waited {outbox['oldest_unpublished_s']:g} s)"
    )
    for name, depth in report["queues"].items():
        click.echo(f"queue {name:<22} ready {depth['ready']:>7}  consumers {depth['consumers']}")
    click.echo("jobs by state: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if "broker_error" in report:
        click.echo(f"broker unreachable: {report['broker_error']}", err=True)


@admin.command("dead-letters")
@click.option(
    "--redrive", "redrive_job", metavar="JOB_ID", help="Stamp this job again as a new job."
)
@click.option("--limit", default=50, show_default=True)
@click.option("--after", default=0, show_default=True, help="Page: list entries after this id.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_dead_letters(redrive_job: str | None, limit: int, after: int, as_json: bool) -> None:
    """List what the signing tier gave up on (each job already refunded), or re-drive one
    after the cause is fixed: its document is stamped again as a new job with a new serial."""
    from meterai_common.db import create_engine
    from meterai_stamping.bootstrap import offline_stamping

    settings = _private_settings()
    stamping = offline_stamping(settings, create_engine(settings.database_url))
    if redrive_job:
        try:
            job = stamping.redrive(redrive_job)
        except Exception as error:
            code = getattr(error, "code", None)
            if code is None:
                raise
            raise click.ClickException(f"{code}: {error}") from None
        emit({"redriven": redrive_job, "new_job_id": job.job_id, "serial": job.serial}, as_json)
        return
    letters = stamping.dead_letters(limit, after)
    rows = [
        {
            "id": d.id,
            "job_id": d.job_id,
            "queue": d.source_queue,
            "reason": d.reason,
            "at": d.created_at.isoformat(),
        }
        for d in letters
    ]
    if as_json:
        emit(
            {"dead_letters": rows, "next_after": rows[-1]["id"] if len(rows) == limit else None},
            True,
        )
        return
    if not rows:
        click.echo("no dead letters")
    for row in rows:
        click.echo(
            f"{row['id']:>6}  {row['at']}  job {row['job_id']}  [{row['queue']}]  {row['reason']}"
        )
    if len(rows) == limit:
        click.echo(f"more: --after {rows[-1]['id']}")


@admin.command("topology")
@click.option(
    "--users",
    is_flag=True,
    help="Also the per-service broker users, their permissions and topic permissions.",
)
@click.option(
    "--passwords-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --users: read each service's password from DIR/amqp-SERVICE.password, creating "
    "a random one (0600) where missing, and put its hash in the definitions.",
)
@click.option("--vhost", default="/", show_default=True, help="Virtual host of the platform.")
@click.option("--user-prefix", default="meterai-", show_default=True, help="Broker user names.")
@click.option(
    "--apply",
    is_flag=True,
    help="Instead of printing: declare exchanges, queues and bindings on AMQP_URL (the "
    "operator's broker user; service users may not configure).",
)
def admin_topology(
    users: bool, passwords_dir: Path | None, vhost: str, user_prefix: str, apply: bool
) -> None:
    """Print the RabbitMQ definitions of the platform (for `rabbitmqctl import_definitions` or
    the broker's `load_definitions`), or declare the topology with --apply.

    \b
    meterai admin topology --users > deploy/rabbitmq/definitions.json
    meterai admin topology --users --passwords-dir secrets/ > definitions.json
    """
    from meterai_common.broker_users import GRANTS, user_definitions
    from meterai_common.messaging import ensure_topology_at, topology_definitions

    if apply:
        settings = _private_settings()
        if settings.amqp_url is None:
            raise click.ClickException("--apply needs AMQP_URL (the operator's broker user)")
        ensure_topology_at(settings.amqp_url)
        click.echo("topology present", err=True)
        return
    definitions = topology_definitions(vhost=vhost)
    if users:
        passwords = _broker_passwords(passwords_dir, tuple(GRANTS)) if passwords_dir else None
        definitions = {
            **user_definitions(passwords, vhost=vhost, prefix=user_prefix),
            **definitions,
        }
    elif passwords_dir is not None:
        raise click.UsageError("--passwords-dir goes with --users")
    click.echo(json.dumps(definitions, indent=2))


@admin.command("deploy-secrets")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--owner", type=int, default=None, help="uid/gid for the service folders (root).")
@click.option("--broker-owner", type=int, default=None, help="uid/gid for DIR/rabbitmq (root).")
def admin_deploy_secrets(directory: Path, owner: int | None, broker_owner: int | None) -> None:
    """Write one credential folder per process kind (TLS files, broker password) and the
    broker's definitions with password hashes, for deployments that mount files.

    \b
    sudo meterai admin deploy-secrets deploy/secrets --owner 10001 --broker-owner 999
    docker compose up -d          # each container mounts only its own folder, read-only
    METERAI_TLS_HOSTS adds host names to the service certificates.
    """
    from meterai_cli.deploy_secrets import write_deploy_secrets

    settings = _private_settings()
    hosts = ("quota", "stamping", "signing", "verify", *settings.tls_hosts)
    for folder in write_deploy_secrets(directory, hosts, owner=owner, broker_owner=broker_owner):
        click.echo(f"{folder}")


def _broker_passwords(directory: Path, services: tuple[str, ...]) -> dict[str, str]:
    import secrets

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    passwords = {}
    for service in services:
        path = directory / f"amqp-{service}.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
        passwords[service] = path.read_text().splitlines()[0].strip()
    return passwords


# -- helpers --------------------------------------------------------------------------------
# -- signing key in a token, audit trail ----------------------------------------------------
def _init_token_key(
    settings: Settings, module: str | None, token: str | None, pin_file: Path | None, kind: str
) -> None:
    from meterai_signing.errors import IdentityError
    from meterai_signing.pkcs11_key import Pkcs11Settings
    from meterai_signing.token_setup import init_token_pki

    if module is None or token is None:
        raise click.UsageError("--pkcs11 MODULE and --token LABEL go together")
    pin = pin_file.read_text().splitlines()[0].strip() if pin_file else settings.pkcs11_pin
    if not pin:
        raise click.UsageError("give the token's user PIN: --pin-file or METERAI_PKCS11_PIN_FILE")
    token_settings = Pkcs11Settings(
        module=module, token=token, pin=pin, key_label=settings.pkcs11_key_label
    )
    try:
        made = init_token_pki(settings, token_settings, kind)
    except IdentityError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{'created' if made.created else 'found'} {made.key_label}; chain in {made.chain}")
    click.echo("Sign with it by setting, for the signing service and workers:")
    click.echo(f"  METERAI_PKCS11_MODULE={module} METERAI_PKCS11_TOKEN={token}")
    click.echo("  METERAI_PKCS11_PIN_FILE=<file holding the user PIN>")


@admin.group("audit")
def admin_audit() -> None:
    """The tamper-evident audit trail of security events."""


@admin_audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_audit_verify(as_json: bool) -> None:
    """Recompute the hash chain and every signed checkpoint; name the first broken row."""
    from meterai_common import audit
    from meterai_common.db import create_engine

    with create_engine(_settings().database_url).connect() as conn:
        report = audit.verify(conn)
    data: dict[str, Any] = {
        "ok": report.ok,
        "events": report.events,
        "checkpoints": report.checkpoints,
    }
    if not report.ok:
        data.update(broken_at=report.broken_at, problem=report.problem)
    if as_json:
        emit(data, True)
    elif report.ok:
        click.echo(f"audit trail intact: {report.events} events, {report.checkpoints} checkpoints")
    else:
        click.echo(f"audit trail BROKEN at row {report.broken_at}: {report.problem}")
    sys.exit(0 if report.ok else EXIT_REFUSED)


@admin_audit.command("show")
@click.option("--serial", required=True, help="The e-meterai serial (or any event subject).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def admin_audit_show(serial: str, as_json: bool) -> None:
    """Show every audit event about one stamp, oldest first."""
    from meterai_common import audit
    from meterai_common.db import create_engine

    with create_engine(_settings().database_url).connect() as conn:
        rows = audit.events_about(conn, serial)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"seq": r.seq, "at": r.at, "kind": r.kind, "details": dict(r.details)}
                    for r in rows
                ],
                indent=2,
                sort_keys=True,
            )
        )
        return
    if not rows:
        click.echo(f"no audit events about {serial}")
    for r in rows:
        facts = " ".join(f"{k}={v}" for k, v in sorted(r.details.items()))
        click.echo(f"#{r.seq} {r.at} {r.kind} {facts}")


def _settings() -> Settings:
    from dataclasses import replace

    context = click.get_current_context().find_object(Context)
    try:
        settings = Settings.from_env(home=context.home if context else None)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if context is not None and context.insecure:
        settings = replace(settings, insecure=True)
    return settings


def _private_settings() -> Settings:
    """Settings for a command that writes under $METERAI_HOME: the home is made private first
    (umask 077, existing entries tightened)."""
    from meterai_common.private_home import make_home_private

    settings = _settings()
    make_home_private(settings.home)
    return settings


def _instrument(process: str, verbose: bool, default: str = "json") -> None:
    """Logs and traces of this process. Logs: JSON lines for services and workers (a log
    pipeline reads them), text for ``meterai up`` in a terminal; ``METERAI_LOG_FORMAT``
    overrides either (see :mod:`meterai_common.logs`). Traces: exported when the standard
    ``OTEL_EXPORTER_OTLP_*`` variables name a collector (:mod:`meterai_common.tracing`)."""
    from meterai_common import logs, tracing

    tracing.configure(process)

    try:
        logs.configure(
            process, verbose=verbose, fmt=os.environ.get("METERAI_LOG_FORMAT") or default
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error


def main() -> None:
    cli(prog_name="meterai")
