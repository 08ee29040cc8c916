"""Command Center's composition root: settings → store → Mattermost client → plugins → run.

``python bot.py`` starts the bot with settings from the environment.  Tests, the demo and the
benchmarks use :class:`CommandCenter` directly, so they run exactly what production runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from backstage import api, login
from backstage import incidents as incident_pages
from backstage import oauth as backstage_oauth
from backstage import playbooks as playbook_pages
from backstage import stats as stats_pages
from backstage import tokens as backstage_tokens
from backstage.app import Backstage
from gateway.alerts import RoutingRules, RulesFormatError, read_rules
from gateway.binding import ChannelTeams
from gateway.client import MattermostClient
from gateway.commands import register_commands
from gateway.directory import Directory
from gateway.errors import MattermostError
from gateway.events import ConnectionPolicy, EventStream
from gateway.inbound import CommandTokens, InboundLimits, InboundServer
from gateway.oauth_client import OAuthClient
from gateway.routing import Registry
from gateway.signing import ReplayGuard, Signer
from gateway.webhooks_out import AddressPolicy, WebhookSender
from plugins.alerts import AlertPlugin
from plugins.backstage import BackstagePlugin
from plugins.base import FeaturePlugin
from plugins.direct import DirectMessagePlugin
from plugins.fields import FieldsPlugin
from plugins.follow import FollowPlugin
from plugins.help import HelpPlugin
from plugins.history import HistoryPlugin
from plugins.incidents import IncidentPlugin
from plugins.playbooks import PlaybookPlugin
from plugins.reminders import ReminderPlugin
from plugins.report import ReportPlugin
from plugins.retro import RetroPlugin
from plugins.stats import StatsPlugin
from plugins.timeline import TimelinePlugin
from plugins.updates import UpdatesPlugin
from services.alerts import AlertService
from services.channels import ChannelPosting
from services.context import BotContext
from services.fields import FieldService
from services.follow import FollowService
from services.history import HistoryService
from services.incidents import IncidentService
from services.livecard import LiveCardScheduler
from services.playbooks import PlaybookService
from services.reminders import ReminderService
from services.replica import LEADER_LEASE, Replica, default_replica_id
from services.report import ReportService
from services.retro import RetroService
from services.scheduler import DAY_MS, Backoff, Clock, CrashHooks, Scheduler, SystemClock
from services.stats import StatsService
from services.timeline import TimelineService
from services.updates import UpdateService
from services.webauth import WebAuth
from services.webhooks import WebhookService, team_targets
from settings import Settings, SettingsError, load_settings
from storage import open_store, redacted_url
from storage.base import Store
from telemetry import NULL_TELEMETRY, Telemetry
from telemetry import build as build_telemetry
from version import MIN_MATTERMOST, mattermost_supported

log = logging.getLogger("command_center")

#: How long a shutdown waits for the handlers of WebSocket events already taken (then closes anyway).
STOP_SETTLE_SECONDS = 5.0
#: Every how many leader rounds expired backstage sessions are forgotten (the first round, then ~every 100).
PRUNE_CREDENTIALS_ROUNDS = 100

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StartupError(Exception):
    """The bot cannot start; the message says why and what to do."""


class _DropMisleadingAuthLog(logging.Filter):
    """mattermostautodriver logs "authentification failed" whenever the server's OK reply arrives
    before its hello (normal, protocol.md §4.1); the bot logs the real connection state itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "authentification" not in record.getMessage()


def warn_if_unsupported(server_version: str) -> None:
    """One WARNING when the server is older than the oldest supported release (never refuses to start)."""
    supported = mattermost_supported(server_version)
    if supported is None:
        log.warning("cannot read the Mattermost server version (X-Version-Id %r); Command Center supports "
                    "Mattermost %s and later", server_version, MIN_MATTERMOST)
    elif not supported:
        log.warning("Mattermost %s is older than %s, the oldest supported release: upgrade the server "
                    "(README \"Works with Mattermost\"); some features may fail", server_version, MIN_MATTERMOST)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    # The autodriver logs every HTTP error it sees at ERROR; ours are mapped and logged once.
    logging.getLogger("mattermostautodriver").setLevel(logging.CRITICAL)
    logging.getLogger("mattermostautodriver.websocket").addFilter(_DropMisleadingAuthLog())
    logging.getLogger("httpx").setLevel(logging.WARNING)


def make_scheduler(store: Store, settings: Settings, hooks: CrashHooks, *, lease_ms: int = 60_000,
                   max_idle_ms: int = 10 * 60_000) -> Scheduler:
    """The scheduler, keeping finished jobs as long as the settings say (``CC_JOB_RETENTION_DAYS``,
    ``CC_FAILED_JOB_RETENTION_DAYS``); ``max_idle_ms``: the longest it sleeps without looking."""
    return Scheduler(store, hooks=hooks, keep_finished_ms=settings.job_retention_days * DAY_MS,
                     keep_failed_ms=settings.failed_job_retention_days * DAY_MS, lease_ms=lease_ms,
                     max_idle_ms=max_idle_ms)


class StoreCheckpoint:
    """Keeps the WebSocket checkpoint (how far events were handled) in the store's settings."""

    KEY = "websocket.checkpoint"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self) -> str | None:
        return await self.store.get_setting(self.KEY)

    async def save(self, value: str) -> None:
        await self.store.set_setting(self.KEY, value)


class CommandCenter:
    """The running bot: owns the store, the one Mattermost client, the HTTP server, the WebSocket and
    the plugins (mmpy_bot ``Plugin`` classes whose handlers the one ``Registry`` collects)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = CommandTokens()
        self.registry = Registry()
        self.client: MattermostClient | None = None
        self._store: Store | None = None
        self.inbound: InboundServer | None = None
        #: The backstage (issue 19): its sign-in (services/webauth.py) and its pages and API (backstage/).
        self.web_auth: WebAuth | None = None
        #: "Sign in with Mattermost" (CC_OAUTH_CLIENT_ID/SECRET): the bot's OAuth client, when configured.
        self.oauth_client: OAuthClient | None = None
        self.backstage: Backstage | None = None
        self.history: HistoryService | None = None
        self.playbooks: PlaybookService | None = None
        self.stats: StatsService | None = None
        self.report: ReportService | None = None
        self.timeline: TimelineService | None = None
        self.fields: FieldService | None = None
        self.retro: RetroService | None = None
        self.events: EventStream | None = None
        self.ctx: BotContext | None = None
        self.callback_base_url = ""
        self.incidents: IncidentService | None = None
        self.directory: Directory | None = None
        self.livecard: LiveCardScheduler | None = None
        self.scheduler: Scheduler | None = None
        self.reminders: ReminderService | None = None
        self.updates: UpdateService | None = None
        #: Alert routing rules (CC_ALERTS_RULES_FILE, read at start) and the service posting about alerts.
        self.alert_rules = RoutingRules()
        self.alerts: AlertService | None = None
        self.webhooks: WebhookService | None = None
        #: Outgoing webhooks: tests inject a sender (e.g. another wall clock) or a faster, seeded backoff.
        self.webhook_sender: WebhookSender | None = None
        self.webhook_backoff: Backoff | None = None
        self._ws_task: asyncio.Task | None = None
        #: This replica's leases (services/replica.py): the WebSocket runs only while it leads.
        self.replica: Replica | None = None
        #: The clock of the leases; tests inject a ManualClock before start().
        self.replica_clock: Clock = SystemClock()
        self._leader_rounds = 0
        # WebSocket keep-alive/reconnect timings; tests shorten them before start().
        self.websocket_policy = ConnectionPolicy()
        self.inbound_limits = InboundLimits()
        self.telemetry: Telemetry = NULL_TELEMETRY
        #: Test-only crash points of the scheduler (services/scheduler.py), read from the environment at start.
        self.crash_hooks = CrashHooks({})

    def build_plugins(self, ctx: BotContext) -> list[FeaturePlugin]:
        """Every feature, in one list; each declares its own handlers on its methods."""
        directory = self.directory = Directory(ctx.client)
        incidents = self.incidents = IncidentService(ctx, directory, commands=self.registry)
        history = HistoryService(ctx, directory)
        # Stored jobs (reminders) fire from the scheduler, started once the bot is up (start()).
        # Other replicas schedule jobs too (and may die holding one): look at the store at least every
        # six lease lengths even when nothing is due here (docs/replicas.md).
        scheduler = self.scheduler = make_scheduler(ctx.store, ctx.settings, self.crash_hooks,
                                                    lease_ms=self.crash_hooks.lease_ms or 60_000,
                                                    max_idle_ms=min(10 * 60_000, 6 * self.settings.lease_ms))
        reminders = self.reminders = ReminderService(ctx, incidents, scheduler)
        # One "may post" check for broadcast channels, configured and sent to (services/channels.py); an
        # update's copies are the update_fanout job kind (services/updates.py).
        posting = ChannelPosting(ctx.client)
        updates = self.updates = UpdateService(ctx, incidents, scheduler, posting)
        alerts = self.alerts = AlertService(ctx, incidents, scheduler, self.alert_rules)
        # Lifecycle events to other tools: an outbox of webhook jobs written with each change (services/webhooks.py).
        policy = AddressPolicy(ctx.settings.webhook_allowed_internal)
        self.webhooks = WebhookService(ctx, incidents, scheduler, self.webhook_sender or WebhookSender(policy),
                                       teams=team_targets(ctx.settings.team_webhooks, policy),
                                       backoff=self.webhook_backoff)
        # The services the chat and the backstage (build_backstage) share: one of each.
        self.history = history
        playbooks = self.playbooks = PlaybookService(ctx, directory, posting)
        stats = self.stats = StatsService(ctx, history)
        report = self.report = ReportService(ctx, history)
        timeline = self.timeline = TimelineService(ctx, directory, incidents, history)
        fields = self.fields = FieldService(ctx, incidents)
        retro = self.retro = RetroService(ctx, incidents, updates, scheduler)
        return [HelpPlugin(ctx), DirectMessagePlugin(ctx, self.registry, history), IncidentPlugin(ctx, incidents),
                HistoryPlugin(ctx, history),
                PlaybookPlugin(ctx, playbooks),
                FollowPlugin(ctx, FollowService(ctx, directory, history)),
                UpdatesPlugin(ctx, updates, history),
                ReminderPlugin(ctx, reminders, incidents), AlertPlugin(ctx, alerts, incidents),
                StatsPlugin(ctx, stats), ReportPlugin(ctx, report),
                TimelinePlugin(ctx, timeline),
                # Severity, custom fields and the retrospective (issue 18).
                FieldsPlugin(ctx, fields),
                RetroPlugin(ctx, retro, history),
                # The backstage's login link (issue 19): the same WebAuth as the pages (build_backstage).
                BackstagePlugin(ctx, self._web_auth(ctx))]

    def _web_auth(self, ctx: BotContext) -> WebAuth:
        if self.web_auth is None or self.web_auth.ctx is not ctx:
            self.web_auth = WebAuth(ctx)
        return self.web_auth

    def build_backstage(self, ctx: BotContext) -> Backstage:
        """The web pages and the REST API (issue 19), on the services the chat uses (build_plugins)."""
        auth = self._web_auth(ctx)
        backstage = self.backstage = Backstage(ctx, auth, body_timeout_s=self.inbound_limits.body_timeout_s)
        login.setup(backstage)
        settings = ctx.settings
        if settings.oauth_client_id and settings.oauth_client_secret:
            self.oauth_client = OAuthClient(settings.mattermost_url, settings.oauth_client_id,
                                            settings.oauth_client_secret, timeout=settings.request_timeout,
                                            browser_url=lambda: ctx.browser_mattermost_url)
        backstage_oauth.setup(backstage, self.oauth_client)
        # The navigation follows the order of these calls; Tokens comes last.
        assert self.incidents and self.history and self.updates and self.report, "build_plugins comes first"
        assert self.playbooks and self.stats and self.timeline, "build_plugins makes the services first"
        incident_pages.setup(backstage, incidents=self.incidents, history=self.history, updates=self.updates,
                             report=self.report)
        playbook_pages.setup(backstage, self.playbooks, self.history)
        stats_pages.setup(backstage, self.stats, self.playbooks, self.history)
        backstage_tokens.setup(backstage)
        api.setup(backstage, api.Services(self.incidents, self.history, self.playbooks, self.stats, self.timeline,
                                          self.updates))
        return backstage

    async def start(self) -> None:
        """Start everything; raises StartupError with a readable reason when that is impossible."""
        settings = self.settings
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StartupError(f"CC_DATA_DIR={settings.data_dir} cannot be created: {error.strerror}") from None
        try:
            signer = Signer(settings.resolve_signing_secret())
        except SettingsError as error:
            raise StartupError(str(error)) from None
        try:
            self.crash_hooks = CrashHooks()
            team_targets(settings.team_webhooks, AddressPolicy(settings.webhook_allowed_internal))
        except ValueError as error:
            raise StartupError(str(error)) from None
        if settings.alerts_rules_file is not None:
            try:
                self.alert_rules = read_rules(settings.alerts_rules_file)
            except RulesFormatError as error:
                raise StartupError(f"CC_ALERTS_RULES_FILE: {error}") from None
        try:
            store = self._store = await open_store(settings.effective_database_url,
                                                 pool_size=settings.database_pool_size)
        except Exception as error:
            raise StartupError(f"Cannot open the database ({redacted_url(settings.effective_database_url)}): {error}. "
                               "Check CC_DATABASE_URL / CC_DATA_DIR.") from None
        # The one client and the one login: every REST call of the bot goes through it.
        client = self.client = MattermostClient(settings.mattermost_url, settings.bot_token,
                                                timeout=settings.request_timeout)
        try:
            me = await client.login()
        except MattermostError as error:
            await self._close_partial()
            if error.status == 401:
                raise StartupError("Mattermost refused CC_BOT_TOKEN (401): create a bot account token and "
                                   "set CC_BOT_TOKEN to it.") from None
            raise StartupError(f"Cannot reach Mattermost at CC_MATTERMOST_URL={settings.mattermost_url}: "
                               f"{error.message}") from None
        log.info("signed in to Mattermost %s as @%s", client.server_version or "?", me.username)
        warn_if_unsupported(client.server_version)

        self.telemetry = await build_telemetry(settings, store, client.server_version)
        self.ctx = BotContext(settings=settings, client=client, signer=signer, store=store, telemetry=self.telemetry)
        try:  # Mattermost's public address, for the links and sign-in a browser opens (the backstage)
            self.ctx.mattermost_site_url = (await client.client_config()).site_url
        except MattermostError as error:
            log.warning("cannot read Mattermost's SiteURL (%s); the backstage links to CC_MATTERMOST_URL", error)
        self.registry.identify(client.user_id, client.username)
        for plugin in self.build_plugins(self.ctx):
            self.registry.include(plugin)
        if self.alerts is not None:
            try:
                await self.alerts.resolve()  # each rule's team and triage channel, named at its line
            except (RulesFormatError, MattermostError) as error:
                await self._close_partial()
                raise StartupError(f"CC_ALERTS_RULES_FILE: {error}") from None

        # Spent trigger ids and dialog nonces live in the store, so a restart does not forget them.
        self.inbound = InboundServer(self.registry, signer, self.tokens, self.health, limits=self.inbound_limits,
                                     replays=ReplayGuard(store),
                                     channel_teams=ChannelTeams(client, known=self._incident_team),
                                     trigger=settings.command_trigger,
                                     alerts=self.alerts, alert_secrets=settings.alert_secrets())
        inbound = self.inbound
        # Several requests at once: a write that waits for the disk leaves the event loop to them.
        store.busy_when(lambda: inbound.requests_in_flight > 1)
        self.build_backstage(self.ctx).mount(self.inbound.app)
        try:
            port = await self.inbound.start(settings.listen_host, settings.listen_port)
        except OSError as error:
            await self._close_partial()
            raise StartupError(f"Cannot listen on CC_LISTEN_HOST={settings.listen_host} "
                               f"CC_LISTEN_PORT={settings.listen_port}: {error.strerror}") from None
        self.callback_base_url = self.ctx.callback_base_url = settings.callback_base_url(port)
        log.info("listening on %s:%d; Mattermost calls back at %s", settings.listen_host, port, self.callback_base_url)

        try:
            await register_commands(client, settings.command_trigger, self.callback_base_url, self.tokens)
        except MattermostError as error:
            await self._close_partial()
            raise StartupError(f"Cannot list the bot's teams to register /{settings.command_trigger}: "
                               f"{error.message}") from None

        # Presence and, if no other replica leads, the leader lease (services/replica.py).
        replica = self.replica = Replica(store, settings.replica_id or default_replica_id(),
                                         lease_ms=settings.lease_ms, clock=self.replica_clock)
        if self.incidents is not None:
            self.incidents.replica = replica
            try:
                for outcome in await self.incidents.recover():
                    log.info("recovered interrupted start: %s", outcome)
            except Exception:  # never keep the bot down because a repair failed; it is retried next start
                log.exception("recovering interrupted incident starts failed")

        self.registry.start()
        if self.incidents is not None:
            # The duration on the cards of ongoing incidents refreshes on its own (services/livecard.py),
            # ticked by the leader; every replica knows the edit time limit its changes must respect.
            self.livecard = LiveCardScheduler(self.incidents.cards, store, self.tokens.teams)
            await self.livecard.learn_edit_limit()
        replica.on_elected.append(self._lead)
        replica.on_deposed.append(self._step_down)
        replica.while_leading.append(self._leader_round)

        # Stored jobs (reminders) fire from here; an ended incident's jobs are cancelled (services/scheduler.py),
        # and each incident's reminder follows its due time (services/reminders.py).
        if self.scheduler is None:
            self.scheduler = make_scheduler(store, self.settings, self.crash_hooks,
                                            max_idle_ms=min(10 * 60_000, 6 * self.settings.lease_ms))
        if self.incidents is not None:
            self.incidents.cards.listeners.append(self.scheduler.incident_changed)
            if self.reminders is not None:
                self.incidents.cards.listeners.append(self.reminders.incident_changed)
        await self.scheduler.start()
        # Last: the first round takes the leader lease if it is free, which connects the WebSocket.
        await replica.start()

    # Leading: the WebSocket, the live card's ticks and the recovery sweep (docs/replicas.md) -------
    async def _lead(self) -> None:
        """This replica took the leader lease: connect the WebSocket, which catches up from the checkpoint
        in the database what arrived since the last leader saved it, and tick the live cards."""
        assert self.client is not None and self.replica is not None
        # The WebSocket is ours (gateway/events.py: reconnects, catch-up, checkpoint), over the same
        # client's address and token; every event it receives goes through the registry, once across
        # replicas (Replica.claim_event).
        self.events = EventStream(self.client, self.registry.event, policy=self.websocket_policy,
                                  checkpoint=StoreCheckpoint(self.store), wants=self.registry.wants,
                                  claim=self.replica.claim_event)
        if self.directory is not None:
            # Channel membership follows Mattermost's events, and only while they arrive.
            self.events.observe(self.directory.observe, self.directory.OBSERVED_EVENTS)
            self.events.on_connection(self.directory.connection_changed)
        self._ws_task = asyncio.create_task(self.events.run(), name="websocket")
        if self.livecard is not None:
            try:
                await self.livecard.start()
            except Exception:  # the cards still follow every change; only the duration would stand still
                log.exception("the live card scheduler did not start")
        if self.scheduler is not None:
            self.scheduler.wake()  # the old leader may have died holding a job

    async def _step_down(self) -> None:
        """The lease is gone (another replica took it, or this one is stopping): stop the WebSocket
        without saving its checkpoint (the new leader's is the one that counts) and the live card."""
        task, self._ws_task = self._ws_task, None
        if task is not None:
            if self.events is not None:
                self.events.stopping = True
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.livecard is not None:
            await self.livecard.stop()

    async def _leader_round(self) -> None:
        """Every lease round while leading: complete starts abandoned by a replica that died, and now
        and then take the ongoing incidents (started anywhere) into the live card's schedule."""
        self._leader_rounds += 1
        if self.incidents is not None:
            for outcome in await self.incidents.recover(sweep=True):
                log.info("recovered a start abandoned by another replica: %s", outcome)
        if self.livecard is not None and self._leader_rounds % 18 == 0:
            await self.livecard.resume()
        if self.web_auth is not None and self._leader_rounds % PRUNE_CREDENTIALS_ROUNDS == 1:
            pruned = await self.web_auth.prune()  # expired backstage sessions (issue 19)
            if pruned:
                log.info("forgot %d expired backstage sessions", pruned)

    @property
    def store(self) -> Store:
        """The open store (once :meth:`start` has opened it)."""
        if self._store is None:
            raise RuntimeError("the store is open only once the bot has started")
        return self._store

    async def _incident_team(self, channel_id: str) -> str | None:
        """The team of an incident channel, from the store (known even if the bot was removed from it)."""
        incident = await self.store.incident_by_channel(channel_id)
        return incident.team_id if incident is not None else None

    async def wait_connected(self, timeout: float = 10.0) -> None:
        assert self.events is not None
        await asyncio.wait_for(self.events.connected.wait(), timeout)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: can this replica serve (store and Mattermost reachable; the WebSocket up if it
        leads), and does it hold the leader lease. 503 when it cannot: a load balancer sends it nothing."""
        leading = self.replica is not None and self.replica.holds()
        connected = bool(leading and self.events and self.events.connected.is_set())
        try:
            await self.store.get_lease(LEADER_LEASE)
            store_ok = True
        except Exception:
            store_ok = False
        mattermost_ok = self.client is not None and await self.client.ping()
        healthy = store_ok and mattermost_ok and (connected or not leading)
        details: dict[str, Any] = {
            "websocket": "connected" if connected else ("disconnected" if leading else "standby"),
            "store": "ok" if store_ok else "unreachable", "mattermost": "ok" if mattermost_ok else "unreachable",
            "command_teams": len(self.tokens.teams())}
        if self.replica is not None:
            details.update(self.replica.lease_info())
        return healthy, details

    async def _close_partial(self) -> None:
        if self.inbound is not None:
            await self.inbound.stop()
        await self.telemetry.close()
        if self.oauth_client is not None:
            await self.oauth_client.close()
        if self.client is not None:
            await self.client.close()
        if self._store is not None:
            await self._store.close()

    async def stop(self) -> None:
        """Stop taking requests, close the WebSocket, give the leases up, then close the store last."""
        if self.inbound is not None:
            await self.inbound.stop()
        replica = self.replica
        if replica is not None:
            await replica.halt()  # no more rounds; the leases are given up once the checkpoint is saved
        if self.livecard is not None:
            await self.livecard.stop()
        if self.reminders is not None:
            await self.reminders.settle()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.incidents is not None:
            await self.incidents.cards.close()
        if self.events is not None and self._ws_task is not None:  # only a leader's checkpoint counts
            try:
                await self.events.save_checkpoint()
            except Exception:  # the next start catches up from an older point; duplicates are dropped
                log.exception("could not save the websocket checkpoint at shutdown")
        if self._ws_task is not None:
            if self.events is not None:
                self.events.stopping = True
            self._ws_task.cancel()
            try:
                await self._ws_task
            except (asyncio.CancelledError, Exception):
                pass
        if self.events is not None:  # handlers of events already taken finish before the store closes
            try:
                await asyncio.wait_for(self.events.settled(), STOP_SETTLE_SECONDS)
            except TimeoutError:
                log.warning("websocket event handlers still running after %ss at shutdown", STOP_SETTLE_SECONDS)
        if replica is not None:
            await replica.release()  # another replica may lead at once
        if self.directory is not None:
            await self.directory.close()
        if self.ctx is not None:
            self.registry.stop()
        await self._close_partial()


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    app = CommandCenter(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("running on %s.%s", type(loop).__module__, type(loop).__name__)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await app.stop()


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"command-center: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if settings.event_loop == "uvloop":
        try:
            import uvloop  # pinned in requirements.txt; only imported when chosen
        except ImportError:
            print("command-center: CC_EVENT_LOOP=uvloop needs the uvloop package (pip install -r requirements.txt)",
                  file=sys.stderr)
            return 2
        runner = uvloop.run
    try:
        runner(run(settings))
    except StartupError as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
