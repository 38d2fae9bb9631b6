"""The web application served from a thread over a small hand-made index, on each backend."""
import asyncio
import threading
import uuid

import pytest
from aiohttp import web

from finmon import evidence
from finmon.model import Analysis, Evidence, Finding
from index.sqlite import SQLiteStore
from tests.reports.conftest import WEEK2, populate

HOSTILE_BODY = b"<html><script>alert('captured')</script>\xe6\x88\x91\xe4\xbb\xac\xe6\x94\xb6\xe9\x9b\x86\xe9\x80\x9a\xe8\xae\xaf\xe5\xbd\x95</html>"


class Served:
    """An aiohttp application on 127.0.0.1 (an ephemeral port), in a thread with its own event loop."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()  # set up from the loop's own thread: the caller's may run a loop (Playwright's)
        self.runner = web.AppRunner(app)
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def populate_with_capture(store, folder):
    """The report tests' index, and one more finding that rests on a capture in a real WARC file."""
    apps = populate(store)
    loan = apps["com.kuaile.loan"]
    writer = evidence.CaptureWriter(folder)
    ref = evidence.resolve(writer.response("http://policies.test/kuaile.html", 200,
                                           [("Content-Type", "text/html; charset=utf-8")], HOSTILE_BODY,
                                           "2024-03-11T08:05:00+00:00"), folder)
    writer.close()
    extra = Finding(rule_id="C203", severity="medium", confidence="medium", app_key=loan.key, title="无撤回同意途径", regulation="认定方法",
                    evidence=Evidence(kind="absence", key="withdrawal", text="未说明撤回同意的方式"), capture=ref)
    kept = [f for key, fs in [(loan.key, store.findings(app_key=loan.key))] for f in fs if f.status != "resolved"]
    store.save_analysis([loan], [Analysis(loan.key, "lending", 0.8, tuple(kept) + (extra,))], WEEK2)
    return apps, extra


@pytest.fixture(scope="module", params=["sqlite", pytest.param("elastic", marks=pytest.mark.elasticsearch)])
def web_index(request, tmp_path_factory):
    """(base URL, backend name, a function opening the store, the finding with a capture) for the module."""
    from finmon.web import create_app

    folder = tmp_path_factory.mktemp("web-index")
    drop = request.getfixturevalue("drop_es_prefix") if request.param == "elastic" else None
    if request.param == "elastic":
        from index.elastic import ElasticStore

        es_url, prefix = request.getfixturevalue("es_url"), f"finmon-test-{uuid.uuid4().hex[:12]}"
        opener = lambda: ElasticStore(es_url, prefix=prefix)  # noqa: E731
    else:
        opener = lambda: SQLiteStore(folder / "finmon.db")  # noqa: E731
    store = opener()
    _, extra = populate_with_capture(store, folder)
    served = Served(create_app(opener))
    yield {"url": served.url, "backend": request.param, "open": opener, "captured": extra, "db": folder / "finmon.db"}
    served.close()
    if request.param == "elastic":
        drop(store.es, store.prefix)
    store.close()
