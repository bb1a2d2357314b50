"""The one HTTP client and request policy for every connector.

Everything a platform call needs, written once:

* ``ApiClient`` — one ``httpx.Client`` per account run, with a user agent, timeouts,
  retries (tenacity) for idempotent requests only, ``Retry-After`` honoured, a total time
  cap, one token refresh after an auth failure, and cancellation between attempts and
  during every wait.
* ``Pacer`` — per-host pacing: a minimum interval between requests, and a pause until the
  window resets when the rate-limit headers say nothing is left.
* ``RunLimits`` — where a run's clients get their pacer and daily budgets, and what a token
  refresh waits for: the local ones (a single user's run: nothing), or what a run-scoped
  provider gives (a fleet worker installs one with ``run_limits`` for each run: limits
  shared by every worker and the run's fence, fleet/limiter.py).
* ``scrubber`` — the process-wide registry of secrets. Exception messages, log lines and
  stored URLs pass through it, so a token never leaves the process by accident.

Log lines and error messages name only the method and the URL *path*: some APIs put the
access token or a signature in the query string.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import httpx
import tenacity

from archiver.inert import terminal_text

log = logging.getLogger(__name__)


class LinkGuard(Protocol):
    """What the client needs of a links.LinkPolicy (which imports this module): a
    transport that sends only what the policy allows."""

    def transport(self, inner: httpx.BaseTransport | None = None) -> httpx.BaseTransport: ...


SECRET_PLACEHOLDER = "[secret]"


# --------------------------------------------------------------------------- secrets


class Scrubber:
    """Process-wide registry of secrets; replaces each one with ``[secret]``.

    Whoever learns a secret (the token store, a connector reading its client secret)
    calls ``scrubber.add(...)`` once; every log line, error message and stored payload
    is then cleaned on its way out. The URL-encoded forms are registered too, because a
    token such as ``act.abc!6093.va`` appears as ``act.abc%216093.va`` inside a URL.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            for secret in secrets:
                if not secret or len(secret.strip()) < 4:
                    # An empty string would "match" everywhere, and a one-letter "password"
                    # typed by mistake would blank that letter out of every message.
                    continue
                variants = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
                if not variants <= self._secrets:
                    self._secrets |= variants
                    self._pattern = None  # rebuilt lazily on next use

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._secrets:
                # Longest first, so a secret that contains another is replaced whole.
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
            return self._pattern

    def text(self, s: str) -> str:
        if not isinstance(s, str) or not s:
            return s
        pattern = self._compiled()
        return pattern.sub(SECRET_PLACEHOLDER, s) if pattern else s

    def obj(self, value: Any) -> Any:
        """A deep copy of JSON-like data with secrets scrubbed from every string (keys too)."""
        if isinstance(value, str):
            return self.text(value)
        # Plain loops, not comprehensions (a frame each): a value nested to the JSON depth
        # limit (imports.ExportLimits.max_json_depth) stays below Python's recursion limit.
        if isinstance(value, dict):
            copy = {}
            for key, item in value.items():
                copy[self.obj(key)] = self.obj(item)
            return copy
        if isinstance(value, (list, tuple)):
            items = []
            for item in value:
                items.append(self.obj(item))
            return items if isinstance(value, list) else tuple(items)
        return value  # numbers, bools, None: immutable

    def url(self, url: str) -> str:
        """The URL fit to store or show: no query, no fragment, no user:password@."""
        parts = urlsplit(str(url))
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


scrubber = Scrubber()

# Any http(s) URL in a log line loses its query and fragment (signed CDN params, tokens
# in paging links) — this covers httpx's own "HTTP Request: GET https://..." lines.
_URL_WITH_QUERY = re.compile(r"(https?://[^\s?#'\"<>]+)[?#][^\s'\"<>]*")


def scrub_log_text(text: str) -> str:
    return scrubber.text(_URL_WITH_QUERY.sub(r"\1", text))


class ScrubbingFilter(logging.Filter):
    """Formats the record once and scrubs the result (message, traceback, stack)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_archiver_scrubbed", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        # Log lines carry archived text (items, names, links): inert for the terminal too.
        record.msg = terminal_text(scrub_log_text(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatter.format() reuses exc_text when set, so the scrubbed text is printed.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = terminal_text(scrub_log_text(record.exc_text))
        if record.stack_info:
            record.stack_info = terminal_text(scrub_log_text(record.stack_info))
        record._archiver_scrubbed = True
        return True


_SCRUBBING_FILTER = ScrubbingFilter()
log.addFilter(_SCRUBBING_FILTER)  # this module's own lines are always clean
_record_factory_installed = False
_install_lock = threading.Lock()


def install_log_scrubbing(logger: logging.Logger | None = None) -> None:
    """Scrub secrets from log records.

    With a logger: adds the filter to it and to its handlers (a logger's own filters do
    not see records that propagate up from child loggers; its handlers' filters do).
    Without one: wraps the process-wide log-record factory, so every record from every
    logger — ours, httpx's, a third-party connector's — is scrubbed when it is created.
    Safe to call more than once.
    """
    global _record_factory_installed
    with _install_lock:
        if logger is not None:
            for target in (logger, *logger.handlers):
                if _SCRUBBING_FILTER not in target.filters:
                    target.addFilter(_SCRUBBING_FILTER)
            return
        if _record_factory_installed:
            return
        previous_factory = logging.getLogRecordFactory()

        def scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous_factory(*args, **kwargs)
            _SCRUBBING_FILTER.filter(record)
            return record

        logging.setLogRecordFactory(scrubbing_factory)
        _record_factory_installed = True


# --------------------------------------------------------------------------- errors


class NetError(Exception):
    """A request that did not give a usable response.

    ``kind`` is one of: rate_limited, server, timeout, transport, auth, gone, client,
    bad_response. The message is scrubbed and names only method and path.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = scrubber.text(message)
        self.kind = kind
        self.status = status
        # Set on retryable failures; read by the wait strategy.
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE_KINDS


_RETRYABLE_KINDS = {"rate_limited", "server", "timeout", "transport", "bad_response"}


class AuthExpired(NetError):
    """Raised by a connector's auth check (``is_auth_error``) to trigger one refresh+retry."""

    def __init__(self, message: str = "access token rejected", *, status: int | None = None):
        super().__init__(message, kind="auth", status=status)


class Cancelled(Exception):
    """The run was asked to stop (SIGTERM, user): raised before an attempt or during a wait."""

    counts: dict[str, int]   # set by the runner when the page it stopped after was kept


class TokenProvider(Protocol):
    def header(self) -> dict[str, str]:
        """E.g. ``{"Authorization": "Bearer ..."}``; refreshes first if close to expiry."""
        ...

    def refresh(self) -> None:
        """Forced refresh after an auth failure; raises NetError(kind="auth") if revoked."""
        ...


# --------------------------------------------------------------------------- policy


@dataclass
class RetryPolicy:
    attempts: int = 6  # total attempts, the first one included
    base_delay: float = 1.0  # first backoff; doubles per attempt, plus jitter
    max_delay: float = 120.0  # cap on one backoff (a server's Retry-After may exceed it)
    total_cap: float = 900.0  # never spend longer than this on one request
    # "Retry-After: 0" must not become a tight loop: wait at least this, doubling on repeats.
    min_retry_after: float = 0.5


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _parse_reset(value: str, *, now: float) -> float | None:
    """Seconds until a rate-limit window resets: delta seconds, epoch seconds or ISO time.

    Platforms disagree: the IETF draft sends seconds, GitHub and X send epoch seconds,
    Mastodon sends an ISO-8601 timestamp.
    """
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        return number - now if number >= 1_000_000_000 else number
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() - now


# "X-RateLimit-Remaining", "RateLimit-Remaining", "X-Rate-Limit-Remaining",
# "x-ratelimit-remaining-requests"… paired with the reset header of the same family.
_REMAINING_HEADER = re.compile(r"^((?:x-)?rate-?limit-)remaining(.*)$", re.IGNORECASE)


class Pacer:
    """Per-host pacing, shared by every client that talks to one platform.

    * ``requests_per_minute``: keeps a minimum interval between two requests to a host.
    * Rate-limit headers: when a response says no request is left in the window, the next
      request to that host waits until the window resets (at most ``max_wait``).
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        *,
        max_wait: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.min_interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.max_wait = max_wait
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_request: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def delay_for(self, host: str) -> float:
        """How long to wait before the next request to ``host``."""
        now = self._clock()
        with self._lock:
            ready_at = self._blocked_until.get(host, 0.0)
            last = self._last_request.get(host)
            if last is not None and self.min_interval:
                ready_at = max(ready_at, last + self.min_interval)
        return max(0.0, ready_at - now)

    def wait(self, host: str, sleep: Callable[[float], None]) -> None:
        """Sleep (through the caller's cancellable ``sleep``) until ``host`` may be called."""
        delay = self.delay_for(host)
        if delay > 0:
            log.info("pacing %s: waiting %.1fs", host, delay)
            sleep(delay)
        with self._lock:
            self._last_request[host] = self._clock()

    def before_request(self, request: httpx.Request, sleep: Callable[[float], None]) -> None:
        """What ApiClient calls before ``request`` leaves: ``wait`` for its host (a pacer
        that counts per endpoint reads the path too)."""
        self.wait(request.url.host, sleep)

    def after_response(self, request: httpx.Request, response: httpx.Response) -> None:
        """What ApiClient calls with each answer: ``observe`` its headers for its host."""
        self.observe(request.url.host, response.headers)

    def observe(self, host: str, headers: httpx.Headers) -> None:
        """Read rate-limit headers from a response to ``host``."""
        wait = 0.0
        for name, value in headers.items():
            match = _REMAINING_HEADER.match(name)
            if not match:
                continue
            try:
                remaining = float(value.split(",")[0])
            except ValueError:
                continue
            if remaining > 0:
                continue
            prefix, suffix = match.groups()
            reset = headers.get(f"{prefix}reset{suffix}")
            seconds = _parse_reset(reset, now=self._wall_clock()) if reset else None
            if seconds is not None:
                wait = max(wait, min(seconds, self.max_wait))
        if wait > 0:
            with self._lock:
                until = self._clock() + wait
                self._blocked_until[host] = max(self._blocked_until.get(host, 0.0), until)


# --------------------------------------------------------------------------- run limits


class RunLimits(Protocol):
    """A run-scoped provider of the limits a run's clients keep (see ``run_limits``).

    Nothing is installed for a single user's run: each client keeps its local pacer and
    each connector its local daily budget, as they are."""

    def pacer(self, local: Pacer, *, checked_links: bool) -> Pacer:
        """The pacer a client of this run uses instead of ``local`` (which it should keep
        too). ``checked_links``: the client fetches links taken from data (media, CDN)."""
        ...

    def daily_budget(self, local: Any, *, project: str) -> Any:
        """The daily budget (a net.budget.DailyBudget, which imports this module) to charge
        instead of ``local`` (one too): ``project`` names what the
        platform counts the budget against (an app, a cloud project), never a secret."""
        ...

    def token_refresh(self, url: str | None) -> None:
        """A token of this run is about to be refreshed (net/tokens.py; ``url``: the token
        endpoint, when known): return when the request may leave, or raise ``Cancelled``
        when the run must not make it (another run holds the account now: a rotated refresh
        token spent by a zombie would cut the live run off)."""
        ...


_run_limits: contextvars.ContextVar[RunLimits | None] = contextvars.ContextVar("archiver_run_limits", default=None)


@contextlib.contextmanager
def run_limits(limits: RunLimits | None) -> Iterator[None]:
    """Install ``limits`` for the clients and budgets made inside the block (the run's
    thread; a client keeps the pacer it got when it was made)."""
    token = _run_limits.set(limits)
    try:
        yield
    finally:
        _run_limits.reset(token)


def current_run_limits() -> RunLimits | None:
    return _run_limits.get()


# --------------------------------------------------------------------------- client

# Retried unless the caller says otherwise; read-only POSTs pass idempotent=True.
_DEFAULT_IDEMPOTENT = {"GET", "HEAD", "OPTIONS"}


@dataclass
class _Call:
    """One logical request, across its attempts."""

    method: str
    url: str
    kwargs: dict[str, Any]
    idempotent: bool
    authenticated: bool
    expect_json: bool
    stream: bool
    path: str = ""
    refreshed: bool = False  # the token is refreshed at most once per call

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    """Tenacity wait: the server's Retry-After when given, else exponential backoff + jitter.

    A Retry-After smaller than ``min_retry_after * 2**(n-1)`` is raised to that floor,
    so ``Retry-After: 0`` repeated waits 0.5, 1, 2, 4… instead of spinning.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = tenacity.wait_exponential(
            multiplier=policy.base_delay, max=policy.max_delay
        ) + tenacity.wait_random(0, policy.base_delay)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is None:
            return float(self.backoff(retry_state))
        floor = min(
            self.policy.min_retry_after * 2 ** (retry_state.attempt_number - 1),
            self.policy.max_delay,
        )
        return max(retry_after, floor)


class ApiClient:
    """One synchronous HTTP client per account run, with the shared request policy."""

    def __init__(
        self,
        base_url: str = "",
        *,
        tokens: TokenProvider | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30,
        user_agent: str = "archiver/0.1 (+personal archive)",
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        is_auth_error: Callable[[httpx.Response], bool] = lambda r: r.status_code == 401,
        sleep: Callable[[float], None] = time.sleep,
        cancel: Callable[[], bool] | None = None,
        retry_log_level: int = logging.WARNING,
        links: LinkGuard | None = None,
        links_are_api: bool = False,
    ) -> None:
        """``links``: a links.LinkPolicy for a client that fetches links taken from data
        (media, avatars, signed download links): every request and every redirect hop
        is checked against it, and connections go only to addresses it allows.
        ``links_are_api``: those links are the platform's API all the same (Bluesky's blobs,
        from the PDS): a fleet run counts them against the API's shared limit."""
        self.tokens = tokens
        # Media downloads log their retries at DEBUG: the run ends with one line per
        # cause of the files that failed, not lines per attempt per file.
        self.retry_log_level = retry_log_level
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or Pacer()
        limits = _run_limits.get()
        if limits is not None:   # a fleet run: the limits shared by every worker
            self.pacer = limits.pacer(self.pacer, checked_links=links is not None and not links_are_api)
        self.is_auth_error = is_auth_error
        self._sleep_fn = sleep
        self._cancel = cancel
        self._refresh_lock = threading.Lock()
        if links is not None:
            transport = links.transport(transport)
        self._client = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=True,  # httpx drops Authorization on cross-origin redirects
        )

    # -- public surface -------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        authenticated: bool = True,
        expect_json: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries and token refresh. Non-retryable 4xx responses are returned
        as they are: the connector maps its platform's error envelope."""
        response, _ = self._run(
            method, url, kwargs, idempotent=idempotent, authenticated=authenticated,
            expect_json=expect_json, stream=False,
        )
        return response

    def get_json(self, url: str, *, idempotent: bool | None = None,
                 authenticated: bool = True, **kwargs: Any) -> Any:
        """GET and parse the JSON answer (a cut-off body is retried)."""
        _, body = self._run("GET", url, kwargs, idempotent=idempotent,
                            authenticated=authenticated, expect_json=True, stream=False)
        return body

    def post_json(self, url: str, *, idempotent: bool | None = None,
                  authenticated: bool = True, **kwargs: Any) -> Any:
        """POST and parse the JSON answer. Not retried unless ``idempotent=True``."""
        _, body = self._run("POST", url, kwargs, idempotent=idempotent,
                            authenticated=authenticated, expect_json=True, stream=False)
        return body

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        authenticated: bool = False,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """A streaming response for downloads. No auth header by default (CDN links).

        Opening the stream is retried like any request (429, 5xx, timeouts); a failure
        while reading the body is the caller's (MediaStore resumes with Range).
        """
        response, _ = self._run(
            method, url, kwargs, idempotent=idempotent, authenticated=authenticated,
            expect_json=False, stream=True,
        )
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- the retry loop -------------------------------------------------------------

    def _run(
        self,
        method: str,
        url: str,
        kwargs: dict[str, Any],
        *,
        idempotent: bool | None,
        authenticated: bool,
        expect_json: bool,
        stream: bool,
    ) -> tuple[httpx.Response, Any]:
        method = method.upper()
        if idempotent is None:
            idempotent = method in _DEFAULT_IDEMPOTENT
        call = _Call(method, url, kwargs, idempotent, authenticated, expect_json, stream)
        call.path = scrubber.text(self._client.build_request(method, url).url.path)
        policy = self.retry

        def over_time_cap(state: tenacity.RetryCallState) -> bool:
            # idle_for counts our (possibly fake) sleeps; seconds_since_start the real clock.
            spent = max(state.seconds_since_start or 0.0, state.idle_for)
            return spent + state.upcoming_sleep > policy.total_cap

        out_of_attempts = tenacity.stop_after_attempt(policy.attempts)

        def stop(state: tenacity.RetryCallState) -> bool:
            return out_of_attempts(state) or over_time_cap(state)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, NetError) and e.retryable and call.idempotent
            ),
            wait=_WaitRetryAfterOrBackoff(policy),
            stop=stop,
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(call, state),
            reraise=True,
        )
        return retrying(self._attempt, call)

    def _log_retry(self, call: _Call, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.log(
            self.retry_log_level, "%s; retry %d/%d in %.1fs", getattr(error, "message", call.label),
            state.attempt_number + 1, self.retry.attempts, state.upcoming_sleep,
        )

    def _attempt(self, call: _Call) -> tuple[httpx.Response, Any]:
        """One attempt: send, refresh the token once on an auth failure, classify."""
        self._check_cancel()
        response, sent_auth = self._send(call)
        while call.authenticated and self._auth_failed(response):
            response.close()
            if call.refreshed or self.tokens is None:
                raise NetError(f"{call.label}: authorization rejected", kind="auth",
                               status=response.status_code)
            call.refreshed = True
            self._refresh_tokens(call, sent_auth)
            response, sent_auth = self._send(call)
        return self._classify(call, response)

    def _send(self, call: _Call) -> tuple[httpx.Response, dict[str, str]]:
        headers = dict(call.kwargs.get("headers") or {})
        auth_header: dict[str, str] = {}
        if call.authenticated and self.tokens is not None:
            auth_header = self.tokens.header()
            # Defence in depth: whatever the provider registered, its header values
            # (and the bare token after "Bearer ") are secrets.
            for value in auth_header.values():
                scrubber.add(value, value.partition(" ")[2])
            headers.update(auth_header)
        request = self._client.build_request(
            call.method, call.url, **{**call.kwargs, "headers": headers}
        )
        self.pacer.before_request(request, self._sleep)
        self._check_cancel()
        log.debug("%s", call.label)
        try:
            response = self._client.send(request, stream=call.stream)
        except httpx.TimeoutException as exc:
            raise NetError(f"{call.label}: timed out ({type(exc).__name__})",
                           kind="timeout") from None
        except httpx.TransportError as exc:
            raise NetError(f"{call.label}: {type(exc).__name__}: {exc}",
                           kind="transport") from None
        self.pacer.after_response(request, response)
        return response, auth_header

    def _auth_failed(self, response: httpx.Response) -> bool:
        try:
            return bool(self.is_auth_error(response))
        except AuthExpired:
            return True

    def _refresh_tokens(self, call: _Call, header_that_failed: dict[str, str]) -> None:
        # Serialized: several platforms rotate refresh tokens, and two parallel refreshes
        # would kill each other's. If another thread refreshed meanwhile, use its token.
        with self._refresh_lock:
            assert self.tokens is not None
            if self.tokens.header() != header_that_failed:
                return
            log.info("%s: authorization rejected; refreshing the token once", call.label)
            self.tokens.refresh()

    def _classify(self, call: _Call, response: httpx.Response) -> tuple[httpx.Response, Any]:
        status = response.status_code
        retryable_kind = None
        if status == 429:
            retryable_kind = "rate_limited"
        elif status == 408:
            retryable_kind = "timeout"
        elif status >= 500:
            retryable_kind = "server"
        if retryable_kind:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            raise NetError(f"{call.label}: HTTP {status}", kind=retryable_kind,
                           status=status, retry_after=retry_after)
        if not call.expect_json:
            return response, None
        try:
            return response, response.json()
        except RecursionError:
            # Nested past what Python's parser can hold (~1,000 levels): the answer as a
            # whole cannot be read (an item nested less deep is refused on its own, as
            # one bad item: listing.map_items). Said as what it is, never retried.
            from archiver.sync.imports import json_nesting_problem

            problem = json_nesting_problem(response.content) or "JSON nested too deep to read"
            raise NetError(f"{call.label}: HTTP {status} with an answer that cannot be read: {problem}",
                           kind="client", status=status) from None
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if status < 400:
                # A 200 with a cut-off body is a transient fault: worth another attempt.
                raise NetError(f"{call.label}: HTTP {status} with a body that is not "
                               "valid JSON", kind="bad_response", status=status) from None
            kind = "gone" if status in (404, 410) else "client"
            raise NetError(f"{call.label}: HTTP {status}", kind=kind, status=status) from None

    # -- waiting --------------------------------------------------------------------

    def _check_cancel(self) -> None:
        if self._cancel is not None and self._cancel():
            raise Cancelled("cancelled")

    def _sleep(self, seconds: float) -> None:
        """Sleep, but notice a cancel request within about a second."""
        if self._cancel is None:
            self._sleep_fn(seconds)
            return
        remaining = float(seconds)
        while remaining > 0:
            self._check_cancel()
            step = min(1.0, remaining)
            self._sleep_fn(step)
            remaining -= step
        self._check_cancel()
