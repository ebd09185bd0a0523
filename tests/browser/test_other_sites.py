"""Another site in the same Chromium as the instructor: a link to the dashboard and a form
that posts to /logout. The page is served from http://localhost:PORT, another site than
the dashboard's http://127.0.0.1:PORT, so the browser sends no SameSite=Strict cookie."""

import http.server
import threading

import pytest
from playwright.sync_api import expect

from tests.helpers import open_as_instructor

pytestmark = pytest.mark.browser


@pytest.fixture
def other_site(live):
    page = (
        f'<!doctype html><a id="go" href="{live.url}">the dashboard</a>'
        f'<form id="out" method="post" action="{live.url}logout"><button>logout</button></form>'
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.reliability(
    "intruders", "another site's link and logout form, clicked in the instructor's Chromium"
)
def test_another_sites_link_and_form_leave_the_instructor_in_control(page, live, other_site, report):
    open_as_instructor(page, live)
    page.goto(other_site)
    page.click("#go")
    expect(page.locator("#role")).to_have_text("instructor")
    page.goto(other_site)
    with page.expect_response(f"{live.url}logout") as answer:
        page.click("#out button")
    assert answer.value.status == 403
    page.goto(live.url)
    expect(page.locator("#role")).to_have_text("instructor")
    report["cases"] = 2
    report["detail"] = "the link reloads as the dashboard's own navigation; the form is refused (403)"
