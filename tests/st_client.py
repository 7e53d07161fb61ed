"""A browserless Streamlit client: one session over the app's websocket, as `tests/loadtest.py` drives it.

It speaks what the browser speaks on `/_stcore/stream`: it sends `BackMsg.rerun_script` (a page, widget
values, or a fragment to rerun) and reads `ForwardMsg`s until the script run ends. Nothing is rendered,
so thirty of these on one 2-core machine measure the server, not thirty Chromium renderers.
Widgets are found by their `key` (Streamlit ends a keyed widget's id with `-<key>`).

Like a browser, a client first loads the page over HTTP and keeps the cookies it is given, then opens
the websocket with them: behind `python -m dsmini serve` that is the sticky cookie that keeps one
session on one replica (each client its own, so a simulated class spreads over the replicas like a
real one); `replica` says which replica nginx chose (its `X-Dsmini-Replica` header; None without it).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

# A run cut short by st.rerun() is followed by the run that counts; these two end a run for good.
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


@dataclass
class Run:
    """One script run as the client saw it: how long it took, what it drew, what went wrong."""

    seconds: float
    elements: list = field(default_factory=list)  # Element protos, in the order they arrived
    problems: list[str] = field(default_factory=list)  # exceptions and st.error messages shown

    def find(self, kind: str, key: str | None = None, **props):
        """The first element of `kind` (e.g. "button") with widget key `key` and matching fields, or None."""
        for element in self.elements:
            if element.WhichOneof("type") != kind:
                continue
            body = getattr(element, kind)
            if key is not None and not getattr(body, "id", "").endswith(f"-{key}"):
                continue
            if all(getattr(body, name) == value for name, value in props.items()):
                return body
        return None


def trigger(widget_id: str) -> WidgetState:
    """A button click."""
    return WidgetState(id=widget_id, trigger_value=True)


def text(widget_id: str, value: str) -> WidgetState:
    return WidgetState(id=widget_id, string_value=value)


class StreamlitClient:
    """One browser tab's worth of session: `async with StreamlitClient(url) as app: await app.run(page="")`."""

    def __init__(self, http_url: str, timeout_s: float = 120.0):
        self.http_url = http_url.rstrip("/") + "/"
        self.url = re.sub(r"^http", "ws", http_url).rstrip("/") + "/_stcore/stream"  # https -> wss too
        self.cookies: dict[str, str] = {}  # what the page load set, sent with the websocket
        self.replica: str | None = None  # the replica nginx sent the websocket to (dsmini serve), if any
        self.timeout_s = timeout_s
        self.page_hashes: dict[str, str] = {}  # url path ("" = home) -> page_script_hash, from the app's navigation
        self.fragment_intervals: dict[str, float] = {}  # fragment id -> seconds, from st.fragment(run_every=...)
        self.page_hash = ""
        self._ws = None

    async def __aenter__(self) -> StreamlitClient:
        self.cookies = await asyncio.to_thread(self._load_page)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        # "streamlit" is the subprotocol the server selects; no Origin header, like any non-browser client.
        self._ws = await connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout_s,
                                 additional_headers=headers)
        self.replica = self._ws.response.headers.get("X-Dsmini-Replica")
        return self

    def _load_page(self) -> dict[str, str]:
        """GET the app's page as a browser does first; the cookies it sets."""
        with urllib.request.urlopen(self.http_url, timeout=self.timeout_s) as response:
            jar = SimpleCookie()
            for header in response.headers.get_all("Set-Cookie") or ():
                jar.load(header)
            return {name: morsel.value for name, morsel in jar.items()}

    async def __aexit__(self, *exc) -> None:
        await self._ws.close()

    async def run(self, page: str | None = None, widgets: list[WidgetState] = (), fragment_id: str = "") -> Run:
        """Rerun the script like the browser does: open `page` (url path, "" = home; None = stay), with
        `widgets` set, or rerun only `fragment_id` as st.fragment(run_every=...) makes the browser do."""
        msg = BackMsg()
        state = msg.rerun_script
        if page is not None:
            self.page_hash = self.page_hashes.get(page, "")
            state.page_name = page  # used by the server only when the hash is not known yet (first visit)
        state.page_script_hash = self.page_hash
        state.widget_states.widgets.extend(widgets)
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        start = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        run = Run(0.0)
        await asyncio.wait_for(self._read_until_finished(run), self.timeout_s)
        run.seconds = time.perf_counter() - start
        return run

    async def _read_until_finished(self, run: Run) -> None:
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self._ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._collect(run, msg.delta.new_element)
            elif kind == "navigation":
                self.page_hashes = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            elif kind == "new_session" and msg.new_session.page_script_hash:
                self.page_hash = msg.new_session.page_script_hash
            elif kind == "auto_rerun":
                self.fragment_intervals[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "page_not_found":
                run.problems.append(f"page not found: {msg.page_not_found.page_name!r}")
            elif kind == "script_finished":
                if msg.script_finished in FINISHED:
                    return
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    run.problems.append("the script did not compile")
                    return
                run.elements.clear()  # FINISHED_EARLY_FOR_RERUN: the next run redraws the page

    @staticmethod
    def _collect(run: Run, element) -> None:
        run.elements.append(element)
        kind = element.WhichOneof("type")
        if kind == "exception":
            run.problems.append(f"exception: {element.exception.type}: {element.exception.message[:120]}")
        elif kind == "alert" and element.alert.format == Alert.ERROR:
            run.problems.append(f"error: {element.alert.body[:120]}")
