"""Drives the console in Debian's headless Chromium through Playwright, as the people who use it would.

    console.py helpdesk BASE SHOTS    a helper's whole task: log in, find a machine, offer, see the screen, request
                                      control, end with confirmation; then a tier 1 helper sees only viewing
    console.py cross-site BASE EVIL   a page of another origin (EVIL, on another port of the same host) tries to use
                                      the operator's cookie
    console.py no-screen BASE         a machine whose display cannot be shown: the page says why, and offers to
                                      reconnect
    console.py login-link LINK ADMIN  opens a one-time login link of `ora open`, then the same link again; then the
                                      administrator (bearer token ADMIN) ends the browser's session
    console.py security BASE SHOTS SESSION
                                      the security team: a helper is kept out; the timeline filtered, exported and
                                      verified; SESSION's story
    console.py administrator BASE SHOTS
                                      an administrator: versions compared, a decision explained, a machine revoked,
                                      an enrollment token made
    console.py queue BASE SHOTS AGENT STATE PASSWORD
                                      two helpers watch the queue; the person asks for help (ora-agent AGENT, its
                                      state in STATE); one helper takes it, the other sees who; the password opens it
    console.py open-file BASE SHOTS FILE ALTERED LINKED PASSWORD
                                      a helper opens invitation files: LINKED through the link in its mail, ALTERED
                                      dropped on the page (refused), FILE dropped and opened with PASSWORD

Prints one JSON object with what the pages showed; the Swift tests assert on it and on the audit log. Screenshots
(1280x800) go to SHOTS.
"""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import nullcontext

from PIL import Image
from playwright.sync_api import sync_playwright

PASSWORD = "ora-demo"


def trusted_certificate_arguments():
    """Chromium's switch that accepts the certificate the tests' servers serve (ORA_TEST_TLS_CERTIFICATE_FILE, signed by
    the tests' throwaway CA), by its public key: that key, and no other, is trusted as a company's own CA would be."""
    certificate = os.environ.get("ORA_TEST_TLS_CERTIFICATE_FILE")
    if not certificate:
        return []
    key = subprocess.run(["openssl", "x509", "-in", certificate, "-noout", "-pubkey"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=key, check=True,
                         capture_output=True).stdout
    return ["--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(der).digest()).decode()]


def launch(playwright):
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", args=["--no-sandbox"] + trusted_certificate_arguments())
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(30000)
    return browser, page


def log_in(page, base, user):
    page.goto(base + "/")
    page.fill("#login-user", user)
    page.fill("#login-password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("#bar:not([hidden])")


def wait_until(page, expression, seconds=30):
    """Polls `expression` in the page until it is true. (Playwright's wait_for_function compiles its predicate with
    eval, which the console's Content-Security-Policy forbids, as it should.)"""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.1)
    raise RuntimeError("the page never satisfied: " + expression + "; it shows: " + page.inner_text("body"))


def canvas_pixel(page, x, y):
    return page.evaluate(
        """([x, y]) => { const c = document.querySelector('.screen canvas');
        if (!c || !c.width) return null; return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data); }""",
        [x, y])


def helpdesk(base, shots):
    result = {"alerts": []}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        page.on("dialog", lambda dialog: (result["alerts"].append(dialog.message), dialog.dismiss()))
        page.goto(base + "/")
        page.wait_for_selector("#login-user")
        result["login_address"] = page.url
        page.screenshot(path=shots + "/login.png")
        page.fill("#login-user", "lena.wolf")
        page.fill("#login-password", "wrong")
        page.click("form button[type=submit]")
        page.wait_for_selector(".login .error:not(:empty)")
        result["wrong_password"] = page.text_content(".login .error")
        page.fill("#login-password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_selector("tr[data-machine='ws-0101'] .status.online")
        result["who"] = page.text_content("#who")
        result["cookie_readable"] = page.evaluate("document.cookie")
        result["storage"] = page.evaluate("JSON.stringify([localStorage.length, sessionStorage.length])")
        rows = "rows => rows.map(r => r.dataset.machine)"
        page.wait_for_selector(".machines .count:has-text('4 machines')")
        result["listed"] = page.eval_on_selector_all("tbody tr", rows)
        result["listed_count"] = page.text_content(".machines .count")
        page.wait_for_selector("#machine-ou option:nth-child(2)", state="attached")
        result["ou_choices"] = page.eval_on_selector_all("#machine-ou option", "options => options.map(o => o.textContent)")
        page.select_option("#machine-ou", "ou=Workstations,ou=Computers,dc=corp,dc=example")
        page.wait_for_selector(".machines .count:has-text('2 machines')")
        result["in_workstations"] = page.eval_on_selector_all("tbody tr", rows)
        result["ou_address"] = page.evaluate("location.pathname + location.search")
        page.fill("#machine-search", "ws-01")
        page.wait_for_selector(".machines .count:has-text('1 machine')")
        result["found"] = page.eval_on_selector_all("tbody tr", rows)
        result["where"] = page.text_content("tr[data-machine='ws-0101'] .where")
        result["access"] = page.text_content("tr[data-machine='ws-0101'] details summary")
        page.click("tr[data-machine='ws-0101'] details summary")
        result["explanation"] = page.text_content("tr[data-machine='ws-0101'] details p")
        page.screenshot(path=shots + "/machines.png")

        page.click("button[aria-label='Offer help to ws-0101']")
        page.wait_for_selector("dialog.offer[open]")
        result["offer_policy"] = page.text_content("dialog.offer .policy")
        page.check("dialog.offer input[value=control]")
        page.fill("#offer-ticket", "bad ticket")
        page.click("dialog.offer button[type=submit]")
        page.wait_for_selector("dialog.offer .error:not(:empty)")
        result["offer_refused"] = page.text_content("dialog.offer .error")
        page.fill("#offer-ticket", "INC0000001")
        page.fill("#offer-reason", "<img src=x onerror=alert(1)> printer queue")
        page.screenshot(path=shots + "/offer.png")
        page.click("dialog.offer button[type=submit]")
        page.wait_for_url("**/sessions/*")
        result["session_address"] = page.url
        page.wait_for_selector("section.session[data-state=viewing]")
        page.wait_for_selector("section.session[data-screen=connected]")
        wait_until(page, """(() => { const c = document.querySelector('.screen canvas');
            if (!c || !c.width) return false; const p = c.getContext('2d').getImageData(10, 10, 1, 1).data; return p[3] === 255 && p[0] !== 40; })()""")
        result["viewing_banner"] = page.text_content(".banner").split()
        result["reason_shown"] = page.text_content(".facts .reason")
        result["images_on_page"] = page.eval_on_selector_all("main img", "images => images.length")
        result["root_pixel"] = canvas_pixel(page, 10, 10)
        # What the person sees: the page as the browser composes it, the desktop inside the frame.
        box = page.locator(".screen canvas").bounding_box()
        for _ in range(50):
            # The compositor may show the canvas a moment after it was drawn.
            shot = Image.open(io.BytesIO(page.screenshot(path=shots + "/session-viewing.png"))).convert("RGB")
            seen = shot.getpixel((int(box["x"]) + 10, int(box["y"]) + 10))
            if seen != (40, 40, 40):
                break
            time.sleep(0.2)
        result["seen_pixel"] = list(seen)
        result["ctrl_alt_del_while_viewing"] = page.is_visible(".ctrl-alt-del")

        # Chat: a line with markup stays text; a line with a control character is refused, and stays to be fixed.
        result["chat_person"] = page.text_content(".chat .person")
        page.fill("#chat-text", "<img src=x onerror=alert(2)> Could you open Outlook, please?")
        page.press("#chat-text", "Enter")
        page.wait_for_selector(".chat-lines li[data-sequence='1']")
        result["chat_line"] = page.text_content(".chat-lines li[data-sequence='1'] .text")
        result["chat_name"] = page.text_content(".chat-lines li[data-sequence='1'] .name")
        result["chat_images"] = page.eval_on_selector_all(".chat img", "images => images.length")
        result["chat_field_after_send"] = page.input_value("#chat-text")
        page.fill("#chat-text", "one\u0007bell")
        page.press("#chat-text", "Enter")
        page.wait_for_selector(".chat-problem:not(:empty)")
        result["chat_refused"] = page.text_content(".chat-problem")
        result["chat_field_after_refusal"] = page.input_value("#chat-text")
        page.fill("#chat-text", "")
        page.screenshot(path=shots + "/session-chat.png")

        page.click(".request-control")
        page.wait_for_selector("section.session[data-state=controlling]")
        result["control_banner"] = page.text_content(".banner .state")
        result["ctrl_alt_del_while_controlling"] = page.is_visible(".ctrl-alt-del")
        result["frame_colour"] = page.eval_on_selector(".screen", "s => getComputedStyle(s).borderTopColor")
        page.screenshot(path=shots + "/session-control.png")

        page.click(".actions .end")
        page.wait_for_selector("dialog.confirm-end[open]")
        page.screenshot(path=shots + "/session-end.png")
        page.click("dialog.confirm-end button[type=submit]")
        page.wait_for_selector("section.session[data-state=ended]")
        result["ended_banner"] = " ".join(page.text_content(".banner").split())
        result["screen_after_end"] = page.is_visible(".screen")
        page.screenshot(path=shots + "/session-ended.png")

        page.click("#bar a[data-section=sessions]")
        page.wait_for_selector("tbody tr[data-state=ended]")
        result["my_sessions"] = [cell.strip() for cell in page.inner_text("tbody tr").split("\t")]
        page.screenshot(path=shots + "/sessions.png")

        page.click("#logout")
        page.wait_for_selector("#login-user")
        result["after_logout"] = page.text_content("#notice")
        result["me_after_logout"] = page.evaluate("fetch('/api/v1/me').then(r => r.status)")

        # A tier 1 helper may only view: the same machine offers no control.
        log_in(page, base, "hannah.fischer")
        page.wait_for_selector("tr[data-machine='ws-0101']")
        result["tier1_access"] = page.text_content("tr[data-machine='ws-0101'] details summary")
        page.click("button[aria-label='Offer help to ws-0101']")
        result["tier1_control_choice"] = page.is_enabled("dialog.offer input[value=control]")
        browser.close()
    print(json.dumps(result))


def cross_site(base, evil):
    """The operator is logged in on `base`; a page on `evil` (same host, another port) tries its credential."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        log_in(page, base, "lena.wolf")
        statuses = []
        page.on("response", lambda response: statuses.append(
            [response.request.method, response.url.replace(base, ""), response.status]))
        page.goto(evil + "/")
        result["attempts"] = page.evaluate("""async (base) => {
            const tries = {};
            const attempt = async (name, call) => {
                try { const r = await call(); tries[name] = 'read:' + r.status; }
                catch (error) { tries[name] = 'blocked'; }
            };
            await attempt('read_me', () => fetch(base + '/api/v1/me', { credentials: 'include' }));
            await attempt('offer', () => fetch(base + '/api/v1/offers', { method: 'POST', credentials: 'include',
                mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
                body: JSON.stringify({ machine: 'ws-0101', mode: 'control', ticket: 'INC0000001' }) }));
            await attempt('logout', () => fetch(base + '/api/v1/logout', { method: 'POST', credentials: 'include',
                mode: 'no-cors' }));
            await attempt('login', () => fetch(base + '/api/v1/login/browser', { method: 'POST',
                credentials: 'include', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
                body: JSON.stringify({ user: 'omar.haddad', password: 'ora-demo' }) }));
            return tries;
        }""", base)
        result["server_answers"] = statuses
        page.goto(base + "/machines")
        page.wait_for_selector("tr[data-machine='ws-0101']")
        result["still_logged_in"] = page.text_content("#who")
        browser.close()
    print(json.dumps(result))


def security(base, shots, session):
    """The security team: the timeline filtered, a session's story, an export of what is filtered, the chain."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        log_in(page, base, "lena.wolf")
        result["helper_sees_audit"] = page.is_visible("#bar a[data-section=audit]")
        page.goto(base + "/audit")
        page.wait_for_selector(".audit .error:not(:empty)")
        result["helper_audit_refusal"] = page.text_content(".audit .error")
        page.click("#logout")
        page.wait_for_selector("#login-user")

        log_in(page, base, "sara.klein")
        page.click("#bar a[data-section=audit]")
        page.wait_for_selector(".audit .events tbody tr")
        page.wait_for_selector(".audit .ranking li")
        result["top_operators"] = page.eval_on_selector_all(
            ".audit .ranking:nth-of-type(2) li", "items => items.map(i => i.innerText.split('\\n').join(' '))")
        result["bars"] = page.eval_on_selector_all(".audit .chart rect.sessions", "bars => bars.length")
        result["consent_rate"] = page.text_content(".audit .consent-rate")
        page.select_option("select[name=range]", "hour")
        page.fill("input[name=machine]", "ws-0101")
        page.fill("input[name=event]", "offer.*")
        page.click(".filters button[type=submit]")
        wait_until(page, "[...document.querySelectorAll('.audit .events tbody tr')].every(r => r.dataset.event.startsWith('offer.'))")
        result["filtered_events"] = page.eval_on_selector_all(".audit .events tbody tr", "rows => rows.map(r => r.dataset.event)")
        result["address"] = page.url
        page.fill("input[name=event]", "")
        page.fill("input[name=session]", session)
        page.click(".filters button[type=submit]")
        wait_until(page, "document.querySelectorAll('.audit .events tbody tr').length > 2 && "
                         "[...document.querySelectorAll('.audit .events tbody tr')].every(r => r.querySelector('a[href*=\"%s\"]'))" % session)
        result["session_rows"] = page.eval_on_selector_all(
            ".audit .events tbody tr", "rows => rows.map(r => r.dataset.event)")
        result["summaries"] = page.eval_on_selector_all(".audit .events tbody .summary", "cells => cells.map(c => c.textContent)")
        page.click(".audit .events tbody tr details.raw summary")
        result["raw_json"] = json.loads(page.text_content(".audit .events tbody tr details.raw pre"))["session"]
        page.click(".audit .events tbody tr details.raw summary")
        with page.expect_download() as download:
            page.click(".filters .export-csv")
        result["csv_lines"] = open(download.value.path(), encoding="utf-8").read().splitlines()
        page.click(".chain .verify")
        page.wait_for_selector(".chain[data-intact]")
        result["chain"] = page.text_content(".chain-state")
        page.screenshot(path=shots + "/audit.png", full_page=False)

        page.click(".audit .events tbody tr a[href^='/audit/sessions/']")
        page.wait_for_selector(".story .timeline li")
        result["story_events"] = page.eval_on_selector_all(".story .timeline li", "items => items.map(i => i.dataset.event)")
        result["story_facts"] = [" ".join(t.split()) for t in page.eval_on_selector_all(".story .facts div", "ds => ds.map(d => d.innerText)")]
        page.screenshot(path=shots + "/audit-session.png", full_page=False)
        browser.close()
    print(json.dumps(result))


def administrator(base, shots):
    """An administrator: two policy versions compared field by field, a decision explained, a machine revoked, an
    enrollment token made."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        log_in(page, base, "peter.schmidt")
        page.click("#bar a[data-section=policy]")
        page.wait_for_selector(".policy .history tbody tr")
        result["active"] = page.text_content(".policy .active")
        result["versions"] = page.eval_on_selector_all(".policy .history tbody tr", "rows => rows.map(r => r.dataset.version)")
        page.click(".policy .compare")
        page.wait_for_selector(".policy .diff li")
        result["diff"] = page.eval_on_selector_all(
            ".policy .diff li.changed", "items => items.map(i => [i.dataset.policy, [...i.querySelectorAll('li')].map(l => l.textContent)])")
        page.fill("form.explain input[name=operator]", "hannah.fischer")
        page.fill("form.explain input[name=machine]", "ws-0101")
        page.select_option("form.explain select[name=mode]", "control")
        page.click("form.explain button[type=submit]")
        page.wait_for_selector(".policy .decision[data-allowed]")
        result["explain_control"] = [page.get_attribute(".policy .decision", "data-allowed"),
                                     page.text_content(".policy .decision .verdict")]
        page.select_option("form.explain select[name=mode]", "view")
        page.click("form.explain button[type=submit]")
        page.wait_for_selector(".policy .decision[data-allowed=true]")
        result["explain_view"] = page.text_content(".policy .decision .verdict")
        page.screenshot(path=shots + "/policy.png", full_page=True)

        page.click("#bar a[data-section=agents]")
        page.wait_for_selector(".agents tbody tr[data-machine='ws-0101']")
        page.click("button[aria-label='Revoke ws-0101']")
        page.wait_for_selector("dialog.confirm-revoke[open]")
        page.click("dialog.confirm-revoke button[type=submit]")
        page.wait_for_selector(".agents tbody tr[data-machine='ws-0101'] .status.revoked")
        result["revoked"] = page.text_content(".agents tbody tr[data-machine='ws-0101'] .status")
        page.fill("form.token input[name=target]", "ws-0199")
        page.click("form.token button[type=submit]")
        page.wait_for_selector(".agents .created:not([hidden])")
        result["token"] = page.text_content(".agents .token-value")
        result["command"] = page.text_content(".agents .command")
        page.wait_for_selector(".agents .tokens tbody tr[data-state=good]")
        result["tokens_before"] = page.eval_on_selector_all(".agents .tokens tbody tr", "rows => rows.map(r => r.dataset.state)")
        page.click("button[aria-label='Revoke the token for ws-0199']")
        page.wait_for_selector(".agents .tokens tbody tr[data-state=revoked]")
        result["tokens_after"] = page.eval_on_selector_all(".agents .tokens tbody tr", "rows => rows.map(r => r.dataset.state)")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=shots + "/agents.png", full_page=False)
        browser.close()
    print(json.dumps(result))


def no_screen(base):
    """A machine whose display cannot be shown: the session goes on, and the page says why it shows no screen."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        log_in(page, base, "lena.wolf")
        page.wait_for_selector("tr[data-machine='ws-0101'] .status.online")
        page.click("button[aria-label='Offer help to ws-0101']")
        page.fill("#offer-ticket", "INC0000001")
        page.click("dialog.offer button[type=submit]")
        page.wait_for_selector("section.session[data-state=viewing]")
        page.wait_for_selector("section.session .problem:not(:empty)")
        result["problem"] = page.text_content("section.session .problem")
        result["reconnect"] = page.is_visible("section.session .reconnect")
        result["banner"] = page.text_content("section.session .banner .state")
        page.click("section.session .reconnect")
        page.wait_for_selector("section.session .reconnect:visible")
        result["problem_again"] = page.text_content("section.session .problem")
        browser.close()
    print(json.dumps(result))


def queue(base, shots, agent, state, password):
    """The helpdesk's queue, live: Hannah and Lena watch it; the person at WS-0101 asks for help; both see it at once;
    Lena takes it, and Hannah sees who did; Lena types the password the person told her and opens it."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, lena = launch_and_remember(playwright)
        other = browser.new_context(viewport={"width": 1280, "height": 800})
        hannah = other.new_page()
        PAGES.append(hannah)
        for page, user in ((lena, "lena.wolf"), (hannah, "hannah.fischer")):
            log_in(page, base, user)
            page.click("#bar a[data-section=queue]")
            page.wait_for_selector("section.queue .empty:visible")
        result["empty"] = lena.text_content("section.queue .empty")
        message = "Outlook <b>keeps</b> asking for my password"
        sent = subprocess.run(
            [agent, "invite", "--helpdesk", "--password-stdin", "--message", message, "--state-dir", state],
            input=password + "\n", capture_output=True, text=True, timeout=60)
        result["sent"] = sent.stdout
        if sent.returncode != 0:
            raise RuntimeError("ora-agent invite --helpdesk failed: " + sent.stderr)
        started = time.time()
        for page in (lena, hannah):
            page.wait_for_selector("section.queue tr[data-state=open] td.message")
        result["seen_within_seconds"] = time.time() - started
        row = "section.queue tr[data-state=open]"
        result["machine"] = lena.text_content(row + " th")
        result["message"] = lena.text_content(row + " td.message")
        result["markup_in_message"] = lena.query_selector(row + " td.message b") is not None
        if shots:
            lena.screenshot(path=shots + "/queue.png", full_page=False)
        lena.click(row + " button")
        lena.wait_for_selector("form.open-invitation input[name=password]")
        hannah.wait_for_selector("section.queue tr[data-state=taken]")
        result["hannah_sees"] = hannah.text_content("section.queue tr[data-state=taken]")
        lena.fill("form.open-invitation input[name=ticket]", "INC0000001")
        lena.fill("form.open-invitation input[name=password]", "not the password")
        if shots:
            lena.screenshot(path=shots + "/queue-take.png", full_page=False)
        lena.click("form.open-invitation button[type=submit]")
        wait_until(lena, "document.getElementById('notice').textContent.includes('wrong password')", 60)
        result["wrong"] = lena.text_content("#notice")
        lena.fill("form.open-invitation input[name=password]", password)
        lena.click("form.open-invitation button[type=submit]")
        lena.wait_for_selector("section.session[data-state=viewing]", timeout=90000)
        result["session_address"] = lena.url
        result["banner"] = lena.text_content("section.session .banner .state")
        browser.close()
    print(json.dumps(result))


def drop(page, selector, name, content):
    """Drops a file named `name` holding `content` on `selector`, as a person dragging it from their files would."""
    page.evaluate(
        """([selector, name, content]) => {
        const data = new DataTransfer();
        data.items.add(new File([content], name, { type: 'application/json' }));
        const target = document.querySelector(selector);
        for (const type of ['dragenter', 'dragover', 'drop']) {
          target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
        }
        }""", [selector, name, content])


def open_file(base, shots, file, altered, linked, password):
    """Lena opens invitations that came by e-mail: one through the link in the mail, then an altered file dropped on
    the page (refused as not genuine), then the genuine file, with the password the person tells her."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        log_in(page, base, "lena.wolf")
        page.click("#bar a[data-section=queue]")
        page.click("section.queue a[href='/invitations/open']")
        page.wait_for_selector("section.open-file .drop")
        if shots:
            page.screenshot(path=shots + "/open-file.png", full_page=False)
        # The link in the mail carries the file in its fragment.
        with open(linked, "rb") as source:
            fragment = base64.urlsafe_b64encode(source.read()).decode().rstrip("=")
        page.goto(base + "/invitations/open#" + fragment)
        page.wait_for_selector("section.open-file .invitation:not([hidden])")
        result["linked_machine"] = page.text_content("section.open-file .machine")
        result["linked_asked_by"] = page.text_content("section.open-file .asked-by")
        result["linked_channel"] = page.text_content("section.open-file .channel")
        result["address_after_link"] = page.url
        with open(altered) as source:
            drop(page, "section.open-file .drop", "altered.orainvite", source.read())
        wait_until(page, "document.querySelector('section.open-file .message').textContent.includes('ALTERED')")
        page.fill("form.open-invitation input[name=ticket]", "INC0000001")
        page.fill("form.open-invitation input[name=password]", password)
        page.click("form.open-invitation button[type=submit]")
        wait_until(page, "document.getElementById('notice').textContent.includes('not genuine')", 60)
        result["altered"] = page.text_content("#notice")
        with open(file) as source:
            drop(page, "section.open-file .drop", "help.orainvite", source.read())
        wait_until(page, "!document.querySelector('section.open-file .message').textContent.includes('ALTERED')")
        result["message"] = page.text_content("section.open-file .message")
        result["markup_in_message"] = page.query_selector("section.open-file .message b") is not None
        page.fill("form.open-invitation input[name=ticket]", "INC0000001")
        page.fill("form.open-invitation input[name=password]", password)
        if shots:
            page.screenshot(path=shots + "/open-file-ready.png", full_page=False)
        page.click("form.open-invitation button[type=submit]")
        page.wait_for_selector("section.session[data-state=viewing]", timeout=90000)
        result["session_address"] = page.url
        result["banner"] = page.text_content("section.session .banner .state")
        browser.close()
    print(json.dumps(result))


def login_link(link, admin_token):
    """Opens a login link from `ora open`, then the same link again, as a person who kept it would; then an
    administrator ends the first browser's session, which the page notices on its next request."""
    result = {}
    with nullcontext(PLAYWRIGHT[0]) as playwright:
        browser, page = launch_and_remember(playwright)
        page.goto(link)
        page.wait_for_selector("#bar:not([hidden])")
        # The page says "Loading the session…" until the server has answered.
        page.wait_for_selector("section.session:not([data-state=loading]) .state:not(:empty)")
        result["address"] = page.url
        result["who"] = page.text_content("#who")
        result["state"] = page.text_content("section.session .state")
        page.click("#bar a[data-section=sessions]")
        page.wait_for_selector("section.sessions")
        base = link.split("/login/link")[0]
        request = urllib.request.Request(
            base + "/api/v1/operators/revoke", method="POST",
            data=json.dumps({"operator": "lena.wolf", "reason": "test"}).encode(),
            headers={"Authorization": "Bearer " + admin_token, "Content-Type": "application/json"})
        urllib.request.urlopen(request).read()
        page.wait_for_selector("#login-user")
        result["after_revocation"] = page.text_content("#notice")
        second = browser.new_page()
        PAGES.append(second)
        second.goto(link)
        second.wait_for_selector("#login-user")
        result["second_address"] = second.url
        result["second_notice"] = second.text_content("#notice")
        browser.close()
    print(json.dumps(result))


PAGES = []
# The one Playwright of the run: the flows use it, and a failure can still read their pages before it stops.
PLAYWRIGHT = [None]


def launch_and_remember(playwright):
    browser, page = launch(playwright)
    PAGES.append(page)
    return browser, page


if __name__ == "__main__":
    flow = sys.argv[1]
    flows = {"helpdesk": helpdesk, "cross-site": cross_site, "login-link": login_link, "security": security,
             "administrator": administrator, "no-screen": no_screen, "queue": queue, "open-file": open_file}
    if flow not in flows:
        sys.exit("unknown flow " + flow)
    with sync_playwright() as running:
        PLAYWRIGHT[0] = running
        try:
            flows[flow](*sys.argv[2:])
        except Exception:
            # What the page showed when the flow failed, to tell a slow machine from a wrong page.
            for page in PAGES:
                try:
                    sys.stderr.write("the page at %s shows:\n%s\n" % (page.url, page.inner_text("body")))
                except Exception as error:
                    sys.stderr.write("the page could not be read: %s\n" % error)
            raise
