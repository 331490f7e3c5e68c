"""The JSON API and the web UI, served by one FastAPI app.

Endpoints are plain `def` functions, which FastAPI runs in its thread pool, so
model work never blocks the event loop. `POST /api/handoff` is a chat client's
"talk to a person" control: it hands the conversation to the support team at once,
and is counted like `/api/chat`. `POST /api/suggest` is for other help-desk tools
and needs an API key (`X-API-Key`); `/metrics` serves the log's figures to
Prometheus (with a key too, if `metrics_need_api_key` is on). The customer chat is
at `/`; with accounts configured, the agent page is at `/agent` and the admin page
at `/admin`, each behind a sign-in.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import gradio as gr
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.sse import EventSourceResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from assistant import __version__
from assistant.analytics.metrics import prometheus_text
from assistant.channels import contract, rate_limits
from assistant.channels.body_limit import BodyLimit
from assistant.channels.clients import Clients
from assistant.channels.contract import MAX_ROW_ID, message_schema
from assistant.channels.lifespan import WriterLoading, serving_lifespan
from assistant.channels.origins import OriginGuard, add_cors
from assistant.channels.page_guard import MessageEvents, PageGuard, too_many
from assistant.channels.rate_limits import chat_slot, limit_address, limit_chat
from assistant.channels.sse import server_sent_events as _server_sent_events
from assistant.channels.web_chat import prepare_events
from assistant.core.errors import (
    MessageError,
    MissingApiKey,
    RateLimited,
    RequestInFlight,
    RequestKeyReused,
    ServerBusy,
    UnknownConversation,
    UnknownTurn,
)
from assistant.core.pipeline import Assistant
from assistant.core.records import RequestKey
from assistant.core.seams import StaffSignIns
from assistant.core.settings import ApiKey
from assistant.core.trace import public_reply
from assistant.routing.suggestions import suggest
from assistant.staff.access import (
    ADMIN_PATH,
    AGENT_PATH,
    mount_signed_in,
    new_throttle,
    no_users_page,
)
from assistant.staff.accounts import check_api_key
from assistant.staff.availability import TeamAvailability
from assistant.staff.sessions import SessionCookies, StaffSessions


class ChatRequest(BaseModel):
    message: str = Field(json_schema_extra=message_schema("The customer's message."))
    conversation_id: str | None = Field(None, max_length=64)
    stream: bool = False  # server-sent events: "delta" pieces of a written answer, then "reply"


class ChatResponse(BaseModel):
    reply: str
    route: str
    intent: str | None
    confidence: float
    conversation_id: str
    turn_id: int
    latency_ms: float
    model_version: str
    trace: dict[str, Any]
    status: str
    options: list[str] = Field(
        description="Quick replies the customer may send as their next message, e.g. the "
        "likeliest intents a clarifying question offers; empty when there are none."
    )


class HandoffRequest(BaseModel):
    conversation_id: str | None = Field(
        None, max_length=64, description="The conversation to hand off; leave it out to start one."
    )


class FeedbackRequest(BaseModel):
    turn_id: int = Field(ge=1, le=MAX_ROW_ID)
    conversation_id: str = Field(max_length=64)  # the rated turn must be of this conversation
    rating: Literal["up", "down"]


class HistoryLine(BaseModel):
    role: Literal["customer", "bot", "agent"]
    text: str = Field(max_length=10_000)


class SuggestRequest(BaseModel):
    message: str = Field(json_schema_extra=message_schema("The customer's latest message."))
    history: list[HistoryLine] = Field(default_factory=list, max_length=100)


class SuggestionOut(BaseModel):
    text: str
    route: str
    intent: str | None
    score: float
    sources: list[dict[str, Any]]
    trace: dict[str, Any]


class SuggestResponse(BaseModel):
    suggestions: list[SuggestionOut]
    model_version: str


IDEMPOTENCY_KEY = Header(
    alias="Idempotency-Key",
    description="Any unique string (a UUID, say) for this message: a retry sent with the "
    "same key, message and conversation_id gets the reply already given (the same turn_id), "
    "and nothing is logged again. Only its hash is kept; an empty one is none.",
)

UNKNOWN_CONVERSATION = "Unknown conversation_id; leave it out to start a new conversation."


def _error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return JSONResponse(status_code=status, content={"error": message}, headers=headers)


def require_api_key(
    request: Request, key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> ApiKey:
    """Checked before the body is read, so a caller without a key learns nothing more."""
    entry = check_api_key(request.app.state.assistant.settings, key)
    if entry is None:
        raise MissingApiKey
    return entry


def metrics_access(
    request: Request,
    key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """With `metrics_need_api_key`, an API key as `X-API-Key` or as a bearer token (what
    Prometheus's `authorization` scrape setting sends)."""
    if not request.app.state.assistant.settings.access.metrics_need_api_key:
        return
    scheme, _, bearer = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and bearer:
        key = bearer.strip()
    require_api_key(request, key)


def create_app(assistant: Assistant, with_ui: bool = True) -> FastAPI:
    """The JSON API, and with `with_ui` the web chat and the staff pages, on one app."""
    writer = WriterLoading(assistant)
    warm_ups = [prepare_events] if with_ui else []
    app = FastAPI(
        title="Pebble & Pine assistant",
        version=__version__,
        lifespan=serving_lifespan(assistant, writer, warm_ups),
    )
    app.state.assistant = assistant
    app.state.writer = writer
    settings = assistant.settings
    limits = rate_limits.install(app, settings)
    _add_error_handlers(app)
    app.include_router(customer_routes(assistant))
    app.include_router(tool_routes(assistant))
    contract.install(app, assistant.settings)
    messages = MessageEvents()
    if with_ui:
        from assistant.channels.web_chat import build_ui, message_events

        # Before "/": a mount at the root would take every path.
        mount_staff_pages(app, assistant)
        page = build_ui(assistant)
        messages = message_events(page)
        app = gr.mount_gradio_app(app, page, path="/", run_history=False)
    # The last added runs first: the body cap, then CORS, then the origin check.
    staff = (AGENT_PATH, ADMIN_PATH)
    throttle = getattr(app.state, "sign_in_throttle", None)
    app.add_middleware(
        PageGuard, limits=limits, staff_pages=staff, throttle=throttle, messages=messages
    )
    clients = Clients(settings.serving.trusted_proxies)
    app.add_middleware(
        OriginGuard,
        prefixes=staff,
        allowed_origins=settings.access.allowed_origins,
        clients=clients,
    )
    add_cors(app, settings.access.allowed_origins)
    app.add_middleware(BodyLimit, limit=settings.serving.max_request_bytes)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        return _error(422, f"Invalid request: {problems}.")

    @app.exception_handler(RateLimited)
    def rate_limited(request: Request, error: RateLimited) -> JSONResponse:
        return too_many(error)

    @app.exception_handler(ServerBusy)
    def busy(request: Request, error: ServerBusy) -> JSONResponse:
        return JSONResponse(
            {"error": str(error)}, status_code=503, headers={"Retry-After": str(error.retry_after)}
        )

    @app.exception_handler(MissingApiKey)
    def missing_api_key(request: Request, error: MissingApiKey) -> JSONResponse:
        return _error(
            401,
            "Missing or invalid API key: send it in the X-API-Key header "
            "(or, for /metrics, as a bearer token). "
            "An administrator creates keys with `assistant add-api-key NAME`.",
        )


def customer_routes(assistant: Assistant) -> APIRouter:
    """What a customer-facing client calls: chat, feedback, and polling for agent replies."""
    app = APIRouter()

    @app.post(
        "/api/chat",
        response_model=ChatResponse,
        responses=contract.CHAT,
        dependencies=[Depends(limit_chat), Depends(chat_slot)],
    )
    def chat(
        request: ChatRequest,
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> Any:
        retry = None
        if idempotency_key:
            retry = RequestKey.of(idempotency_key, request.conversation_id, request.message)
        try:
            stream = assistant.reply_stream(request.message, request.conversation_id, retry)
        except (MessageError, RequestKeyReused) as error:
            return _error(422, str(error))
        except UnknownConversation:
            return _error(404, UNKNOWN_CONVERSATION)
        except RequestInFlight as error:
            return _error(409, f"{error}; retry in a moment", error.retry_after)
        if request.stream:
            return EventSourceResponse(_server_sent_events(stream))
        return public_reply(stream.final())  # the full trace stays in the log

    @app.post(
        "/api/handoff",
        response_model=ChatResponse,
        responses=contract.HANDOFF,
        dependencies=[Depends(limit_chat)],
    )
    def handoff(request: HandoffRequest) -> Any:
        """The customer asks for a person: the conversation goes to the support team now."""
        try:
            reply = assistant.request_person(request.conversation_id)
        except UnknownConversation:
            return _error(404, UNKNOWN_CONVERSATION)
        return public_reply(reply)

    @app.post("/api/feedback", responses=contract.FEEDBACK, dependencies=[Depends(limit_address)])
    def feedback(request: FeedbackRequest) -> Any:
        rating = 1 if request.rating == "up" else -1
        try:
            feedback_id = assistant.feedback(request.turn_id, request.conversation_id, rating)
        except UnknownTurn:
            # The same answer for a turn of another conversation: turn ids cannot be probed.
            return _error(404, f"Unknown turn_id {request.turn_id} in this conversation.")
        return {"feedback_id": feedback_id}

    @app.get(
        "/api/conversations/{conversation_id}/messages",
        responses=contract.MESSAGES,
        dependencies=[Depends(limit_address)],
    )
    def messages(
        conversation_id: str, after: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0
    ) -> Any:
        """New lines of a conversation (agent replies included), for a chat client to poll."""
        try:
            lines = assistant.store.messages_since(conversation_id, after)
            status = assistant.store.status(conversation_id)
        except UnknownConversation:
            return _error(404, "Unknown conversation_id.")
        return {"messages": lines, "status": status.value}

    return app


def tool_routes(assistant: Assistant) -> APIRouter:
    """What other tools call: suggestions for help desks, metrics for scrapers, health."""
    app = APIRouter()

    @app.post(
        "/api/suggest",
        response_model=SuggestResponse,
        responses=contract.SUGGEST,
        dependencies=[Depends(limit_address)],
    )
    def suggest_replies(
        request: SuggestRequest, _: Annotated[ApiKey, Depends(require_api_key)]
    ) -> Any:
        history = [line.model_dump() for line in request.history]
        models = assistant.models  # the version reported is the one that suggested
        try:
            suggestions = suggest(assistant, request.message, history, models=models)
        except MessageError as error:
            return _error(422, str(error))
        return {
            "suggestions": [s.to_dict() for s in suggestions],
            "model_version": models.versions.describe(),
        }

    @app.get(
        "/metrics",
        dependencies=[Depends(metrics_access)],
        response_class=PlainTextResponse,
        responses=contract.METRICS,
    )
    def metrics() -> Response:
        text = prometheus_text(assistant.store, assistant.settings.routing.handoff_intents)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/health", responses=contract.HEALTH)
    def health(request: Request) -> dict[str, str]:
        writer = request.app.state.writer.state
        return {"status": "ok", "model_version": assistant.model_version, "writer": writer}

    return app


def mount_staff_pages(app: FastAPI, assistant: Assistant) -> None:
    """The agent and admin pages behind a sign-in, or, with no accounts, a page saying how
    to add one."""
    for path in (AGENT_PATH, ADMIN_PATH):
        app.add_api_route(path, _to_slash(path), include_in_schema=False)
    if not assistant.settings.access.users:
        for path in (AGENT_PATH, ADMIN_PATH):
            app.add_api_route(path + "/", no_users_page, include_in_schema=False)
        return
    from assistant.staff.admin_page import build_admin_ui
    from assistant.staff.agent_page import build_agent_ui

    settings = assistant.settings
    records = assistant.store if isinstance(assistant.store, StaffSignIns) else None
    throttle = app.state.sign_in_throttle = new_throttle(settings, records)
    sessions = StaffSessions(settings.access.session_hours, records)
    assistant.staffing = TeamAvailability(
        settings.routing.support_hours, lambda: sessions.signed_in(AGENT_PATH)
    )
    agent_page = build_agent_ui(assistant, AGENT_PATH)
    mount_signed_in(app, agent_page, AGENT_PATH, settings, "agent", throttle, sessions)
    admin_page = build_admin_ui(assistant)
    mount_signed_in(app, admin_page, ADMIN_PATH, settings, "admin", throttle, sessions)
    clients = Clients(settings.serving.trusted_proxies)
    app.add_middleware(
        SessionCookies, sessions=sessions, clients=clients, always_secure=settings.secure_cookies
    )


def _to_slash(path: str):
    """`/agent` itself: the mounted page lives under `/agent/`."""

    def redirect() -> RedirectResponse:
        return RedirectResponse(path + "/", status_code=307)

    return redirect
