"""`archiver serve` while the person browses the web, and `archiver report`, tried as an attacker
would: other sites' pages reaching the server through the browser (DNS rebinding, framing,
forms that POST), and archived data written by strangers (profile links, post links, bios,
commenters) trying to become links that run script in the archive's origin.

A real Datasette process on loopback, real HTTP (httpx, raw sockets for what httpx will not
send), a real headless Chromium that clicks."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import socket
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from chromium_cdp import Chromium
from serve_process import ServerOutput, serving
from test_serve import PICTURE, PICTURE_PATH, PICTURE_SHA, chromium_or_skip

# Its module fixtures are built once: the module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("serve-safety")

NOW = "2024-05-01T12:00:00Z"
PROVENANCE = {"sources": '["api"]', "first_seen_at": NOW, "last_seen_at": NOW, "raw": "{}"}

# URLs as strangers may write them. Each calls pwned('<n>') when it runs as script; browsers
# drop leading spaces and control characters and every tab and newline before they read the
# scheme, so each of these is `javascript:` to them.
HOSTILE_URLS = [
    "javascript:void(pwned('{n}'))",
    "JaVaScRiPt:void(pwned('{n}'))",
    " javascript:void(pwned('{n}'))",
    "\tjavascript:void(pwned('{n}'))",
    "\x01 javascript:void(pwned('{n}'))",
    "java\nscript:void(pwned('{n}'))",
    "jav\tascript:void(pwned('{n}'))",
    "data:text/html,<script>pwned('{n}')</script>",
    "DATA:text/html;base64,PHNjcmlwdD5wd25lZCgpPC9zY3JpcHQ+",
    "  data:text/html,<b>{n}</b>",
    "vbscript:msgbox('{n}')",
    "VBScript:msgbox('{n}')",
]
FINE_URL = "https://fine.example/@fine"


def hostile(n: int) -> str:
    return HOSTILE_URLS[n].format(n=n)


def build_hostile_archive(folder: Path) -> Archive:
    """Every URL-bearing column holds each hostile URL (one row per URL), bios hold them as text,
    and one fine https URL shows that real links stay links."""
    archive = Archive(folder)
    db = archive.db

    def insert(table: str, **row) -> int:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        return db.execute(f"insert into {table} ({columns}) values ({marks})", list(row.values())).lastrowid

    (archive.media_root / PICTURE_PATH).parent.mkdir(parents=True, exist_ok=True)
    (archive.media_root / PICTURE_PATH).write_bytes(PICTURE)
    insert("media", sha256=PICTURE_SHA, path=PICTURE_PATH, mime="image/png", size=len(PICTURE), first_seen_at=NOW)
    insert("accounts", account_id="tiktok:main", platform="tiktok", name="main", username="me",
           bio=f"see {hostile(0)} and {FINE_URL}", url=hostile(1), **PROVENANCE)
    insert("posts", platform="tiktok", post_id="p", account_id="tiktok:main", kind="video",
           created_at="2024-04-01T10:00:00Z", title="The post everyone comments on", url=FINE_URL,
           view_count=10, **PROVENANCE)
    insert("snapshots", snapshot_id=1, account_id="tiktok:main", kind="followers", taken_at=NOW, source="api",
           member_count=len(HOSTILE_URLS), new_count=len(HOSTILE_URLS), lost_count=0, complete=1)
    staged_list = insert("staged_lists", account_id="tiktok:main", kind="followers", taken_at=NOW, source="api",
           started_at=NOW, updated_at=NOW)
    insert("people", platform="tiktok", person_id="fine", handle="fine", display_name="Fine Person",
           url=FINE_URL, **PROVENANCE)
    insert("comments", platform="tiktok", comment_id="fine", account_id="tiktok:main", post_id="p",
           author_id="fine", text="a fine comment", created_at="2024-04-01T10:30:00Z", **PROVENANCE)
    for n in range(len(HOSTILE_URLS)):
        url = hostile(n)
        insert("accounts", account_id=f"tiktok:a{n}", platform="tiktok", name=f"a{n}", username=f"a{n}",
               bio=f"my site: {url}", url=url, **PROVENANCE)
        insert("profile_versions", account_id=f"tiktok:a{n}", replaced_at=NOW, username=f"a{n}",
               bio=url, url=url)
        insert("posts", platform="tiktok", post_id=f"p{n}", account_id="tiktok:main", kind="video",
               created_at=f"2024-04-02T10:00:{n:02d}Z", title=f"Post {n}", text=url, url=url,
               view_count=100 + n, **PROVENANCE)
        insert("post_media", platform="tiktok", post_id=f"p{n}", role="video", source_url=url, status="failed",
               updated_at=NOW)
        insert("people", platform="tiktok", person_id=f"h{n}", handle=f"hostile{n}",
               display_name=f"Hostile Person {n}", url=url, avatar_url=url, bio=f"links: {url}",
               links=json.dumps([url, FINE_URL]), **PROVENANCE)
        insert("comments", platform="tiktok", comment_id=f"c{n}", account_id="tiktok:main", post_id="p",
               author_id=f"h{n}", text=f"comment {n}", created_at=f"2024-04-01T11:00:{n:02d}Z", url=url,
               **PROVENANCE)
        insert("interactions", account_id="tiktok:main", platform="tiktok", kind="like", target=url,
               target_url=url, created_at=NOW, **PROVENANCE)
        insert("audience_events", account_id="tiktok:main", kind="followers", person_id=f"h{n}", event="new",
               at=NOW, snapshot_id=1)
        insert("staged_members", list_id=staged_list, person_id=f"h{n}",
               handle=f"hostile{n}", url=url, avatar_url=url)
        if n:
            insert("person_links", a_platform="tiktok", a_person=f"h{n - 1}", b_platform="tiktok",
                   b_person=f"h{n}", confidence=1, reason="hand-made", status="confirmed", updated_at=NOW)
    db.conn.commit()
    archive.close()
    return archive


# Pages of every kind that show URL-bearing columns: tables, rows, canned queries, the post page.
PAGES = [
    "/", "/archive",
    *(f"/archive/{table}" for table in ("accounts", "profile_versions", "posts", "post_media", "people",
                                         "comments", "interactions", "staged_members", "audience_events")),
    "/archive/posts/tiktok,p", "/archive/posts/tiktok,p0", "/archive/people/tiktok,h0",
    "/archive/accounts/tiktok~3Aa0", "/archive/comments/tiktok,c0",
    "/archive/recent_followers", "/archive/new_followers_this_week", "/archive/top_fans",
    "/archive/people_on_several_platforms", "/archive/most_viewed_videos",
    "/archive?sql=select+url,+avatar_url+from+people",
]


@pytest.fixture(scope="module")
def hostile_archive(tmp_path_factory) -> Archive:
    return build_hostile_archive(tmp_path_factory.mktemp("hostile-archive"))


@pytest.fixture(scope="module")
def server(hostile_archive):
    with serving(hostile_archive) as base:
        yield base


# -- links ------------------------------------------------------------------------------


class _Links(HTMLParser):
    """Every URL-taking attribute of a page, as (tag, attribute, value)."""

    URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "data", "srcset", "xlink:href", "background"}

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES and value is not None:
                self.found.append((tag, name, value))


def scheme_as_a_browser_reads_it(url: str) -> str | None:
    """The scheme a browser sees: leading/trailing C0 and spaces dropped, tabs and newlines removed."""
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("".join(map(chr, range(0x21)))))
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    return match.group(1).lower() if match else None


def links_that_are_not_web_links(html: str, *, allow_embedded_images: bool = False) -> list:
    parser = _Links()
    parser.feed(html)
    bad = []
    for tag, attribute, value in parser.found:
        scheme = scheme_as_a_browser_reads_it(value)
        if scheme in (None, "http", "https"):
            continue
        # The report embeds the archive's own pictures (bytes it stored, not a URL it was given).
        if allow_embedded_images and tag == "img" and re.match(r"data:image/(png|jpeg|gif|webp);base64,", value):
            continue
        bad.append((tag, attribute, value))
    return bad


def test_links_from_archived_data_are_only_http_on_every_page(server):
    for path in PAGES:
        response = httpx.get(server + path, timeout=30)
        assert response.status_code == 200, path
        assert links_that_are_not_web_links(response.text) == [], path
    post_page = httpx.get(server + "/archive/posts/tiktok,p", timeout=30).text
    assert f'<a href="{FINE_URL}">Fine Person</a>' in post_page  # a real profile link stays a link
    for n in range(len(HOSTILE_URLS)):
        assert f"Hostile Person {n}" in post_page  # the commenter is shown, as text


def test_the_report_links_only_http_and_shows_no_absolute_path(hostile_archive, tmp_path):
    out = tmp_path / "report.html"
    subprocess.run([sys.executable, "-m", "archiver.cli", "report", "--archive", str(hostile_archive.folder),
                    "--out", str(out)], check=True, capture_output=True, timeout=120,
                   env={"ARCHIVER_SECRETS": "memory", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    html = out.read_text()
    assert links_that_are_not_web_links(html, allow_embedded_images=True) == []
    assert f'href="{FINE_URL}"' in html
    assert str(hostile_archive.folder) not in html and str(hostile_archive.folder.resolve()) not in html
    assert hostile_archive.folder.name in html  # which archive it is, by its folder's name


# -- what other sites can make the browser send -----------------------------------------


def raw_request(base: str, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (httpx always sends one proper Host header) and read the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def test_only_requests_naming_this_server_in_host_are_answered(server):
    port = server.rsplit(":", 1)[1]
    # DNS rebinding: a page of evil.example points its name at 127.0.0.1; its requests say so.
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", f"localhost.evil.example:{port}",
                 "127.0.0.1@evil.example", f"127.0.0.2:{port}", "0.0.0.0", f"[::1]:{port}", "localhost:x",
                 f"127.0.0.1:{port} evil", "attacker"):
        response = httpx.get(f"{server}/archive/people.json?_shape=array", headers={"Host": host}, timeout=10)
        assert response.status_code == 400, host
        assert "hostile" not in response.text, host
    for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}", f"LocalHost:{port}"):
        response = httpx.get(f"{server}/archive/people.json?_shape=array", headers={"Host": host}, timeout=10)
        assert response.status_code == 200, host
    # No Host at all (HTTP/1.0), or two of them.
    status, answer = raw_request(server, b"GET /archive/people.json HTTP/1.0\r\n\r\n")
    assert status == 400 and b"hostile" not in answer
    status, answer = raw_request(server, b"GET /archive/people.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                         b"Host: evil.example\r\nConnection: close\r\n\r\n")
    assert status == 400 and b"hostile" not in answer


SECURITY_PAGES = [
    "/", "/archive", "/archive/posts", "/archive/posts/tiktok,p", "/archive/top_fans",
    "/archive?sql=select+1", "/archive/posts.json", "/-/versions.json", "/-/static/app.css",
    f"/media/{PICTURE_PATH}", "/no/such/page",
]


def assert_security_headers(response, what):
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, what
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src and "'unsafe-inline'" not in script_src.group(1), what  # keeps javascript: links inert
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp, what
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("x-frame-options") == "DENY", what


def test_every_answer_has_a_csp_nosniff_and_refuses_framing(server):
    for path in SECURITY_PAGES:
        response = httpx.get(server + path, timeout=30)
        assert_security_headers(response, path)
    assert_security_headers(httpx.get(server + "/archive", headers={"Host": "evil.example"}, timeout=10), "refused")
    assert_security_headers(httpx.post(server + "/archive/nope", timeout=10), "POST")


def test_a_post_anywhere_is_a_4xx_and_nothing_prints_a_traceback(hostile_archive):
    output = ServerOutput()
    with serving(hostile_archive, output) as base:
        for path in ("/nothing", "/archive/nope", "/archive/posts", "/archive/recent_runs", "/archive/posts/tiktok,p",
                     "/-/messages", "/-/static/app.css", f"/media/{PICTURE_PATH}", "/archive?sql=select+1"):
            for method in ("POST", "PUT", "DELETE"):
                response = httpx.request(method, base + path, data={"a": "b"}, timeout=10)
                assert 400 <= response.status_code < 500, (method, path, response.status_code)
                assert "Traceback" not in response.text and "Error 500" not in response.text
        # The pages themselves still answer.
        assert httpx.get(base + "/archive/posts", timeout=10).status_code == 200
    assert "Traceback" not in output.text and "Error" not in output.text, output.text[-3000:]


def test_the_absolute_archive_path_is_on_no_page(server, hostile_archive):
    folder = str(hostile_archive.folder)
    for path in [*PAGES, "/-/metadata.json", "/-/databases.json", "/-/settings.json", "/-/versions.json",
                 "/-/plugins.json", "/-/threads.json", "/archive.json", "/.json", "/-/metadata"]:
        response = httpx.get(server + path, timeout=30)
        assert folder not in response.text, path
    assert httpx.get(server + "/-/databases.json", timeout=10).status_code == 404


# -- a real browser clicks --------------------------------------------------------------


def _pwned_calls(browser: Chromium) -> list[str]:
    return [e["params"]["payload"] for e in browser.events if e.get("method") == "Runtime.bindingCalled"]


def _ran_or_was_refused(event) -> bool:
    return event.get("method") == "Runtime.bindingCalled" or (
        event.get("method") == "Log.entryAdded" and "Content Security Policy" in event["params"]["entry"]["text"])


CENTRE_OF = """(element => { element.scrollIntoView({block: "center"}); const r = element.getBoundingClientRect();
                 return [r.x + r.width / 2, r.y + r.height / 2]; })"""


# Where a commenter's name is on screen, whether a link or plain text.
CENTRE_OF_TEXT = """(text => {
    const walker = document.createTreeWalker(document.querySelector('.archiver-comments'), NodeFilter.SHOW_TEXT);
    while (walker.nextNode() && walker.currentNode.textContent.trim() !== text) {}
    if (walker.currentNode.textContent.trim() !== text) return null;
    walker.currentNode.parentElement.scrollIntoView({block: "center"});
    const range = document.createRange(); range.selectNodeContents(walker.currentNode);
    const r = range.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })"""


def test_clicking_a_strangers_link_runs_no_script_in_chromium(server, tmp_path):
    binary = chromium_or_skip()
    with Chromium(binary, tmp_path / "profile") as browser:
        browser.open_page()
        browser.send("Runtime.addBinding", {"name": "pwned"})  # what each hostile URL calls if it runs

        # 1. Each commenter's name on the post page, clicked as a person would.
        browser.navigate(server + "/archive/posts/tiktok,p")
        for n in range(len(HOSTILE_URLS)):
            x, y = browser.evaluate(f"{CENTRE_OF_TEXT}('Hostile Person {n}')")
            href = browser.evaluate(f"document.elementFromPoint({x}, {y}).closest('a')?.getAttribute('href') ?? null")
            browser.click(x, y)
            if href is not None and scheme_as_a_browser_reads_it(href) == "javascript":
                browser.wait_for(_ran_or_was_refused, f"the click on commenter {n}")
            assert _pwned_calls(browser) == [], f"commenter {n}: {href!r}"

        # 2. Should a `javascript:` link ever reach a page (a template mistake, a future column),
        # the page's policy keeps it from running. Put there by DevTools, which the policy does not bind.
        for path in ("/archive/posts/tiktok,p", "/archive/people", "/archive/top_fans"):
            browser.navigate(server + path)
            for n in (0, 1, 2):
                x, y = browser.evaluate(f"""{CENTRE_OF}((() => {{ const a = document.createElement('a');
                    a.href = {HOSTILE_URLS[n].format(n=f'planted{n}')!r}; a.textContent = 'planted link {n}';
                    a.style = 'position:fixed; left:20px; top:20px; font-size:40px; background:#fff; z-index:9999';
                    document.body.append(a); return a; }})())""")
                browser.events.clear()
                browser.click(x, y)
                browser.wait_for(_ran_or_was_refused, f"the click on a planted link on {path}")
                assert _pwned_calls(browser) == [], path


def test_datasette_pages_run_their_own_scripts_and_no_other(server, tmp_path):
    """The policy allows Datasette's own scripts (files and its few inline ones, by hash), so its
    pages work (a Datasette upgrade that adds an inline script shows up here), and no other."""
    binary = chromium_or_skip()
    with Chromium(binary, tmp_path / "profile") as browser:
        browser.open_page()
        for path in ("/", "/archive", "/archive/posts", "/archive/posts/tiktok,p", "/archive/top_fans",
                     "/archive?sql=select+1", f"/media/{PICTURE_PATH}"):
            browser.navigate(server + path)
            assert browser.csp_violations() == [], path
        browser.navigate(server + "/archive/posts")
        assert browser.evaluate("typeof DATASETTE_ALLOW_FACET") == "boolean"  # its inline script ran
        assert browser.evaluate("document.querySelectorAll('.dropdown-menu').length") > 0  # and table.js
        # An inline script that got onto the page some other way does not run.
        browser.send("Runtime.addBinding", {"name": "pwned"})
        browser.events.clear()
        browser.evaluate("""(() => { const s = document.createElement('script'); s.textContent = "pwned('inline')";
                                     document.body.append(s); })()""")
        browser.wait_for(_ran_or_was_refused, "the planted inline script")
        assert _pwned_calls(browser) == []


@contextlib.contextmanager
def another_site(page: str):
    """A page of another origin (another loopback port), as a site the person visits."""
    body = page.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=5)


def test_another_site_can_neither_frame_the_archive_nor_embed_its_media(server, tmp_path):
    binary = chromium_or_skip()
    page = (f'<iframe id="archive" src="{server}/archive/people" width="800" height="600"></iframe>'
            f'<img id="picture" src="{server}/media/{PICTURE_PATH}">')
    with another_site(page) as url, Chromium(binary, tmp_path / "profile") as browser:
        browser.open_page()
        browser.navigate(url)  # the load event waits for the frame and the picture, loaded or refused
        frames = browser.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
        framed = [f["frame"]["url"] for f in frames]
        assert not any(u.startswith(server) for u in framed), framed  # the refused frame shows an error page
        assert browser.evaluate("document.getElementById('picture').naturalWidth") == 0
