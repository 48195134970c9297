"""In a browser: an admin subscribes a receiver, copies the secret, tests it, retries, deletes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WAIT = 15_000  # generous: CI runs this on a busy 2-core machine


def test_admin_subscribes_tests_retries_and_deletes_a_webhook(page, login_as, receiver):
    login_as("admin")
    page.goto("/webhooks/")
    expect(page.locator("main")).to_contain_text("No webhooks yet")

    # A URL that is not http(s) is refused next to the field; nothing is created.
    page.fill("input[name=url]", "ftp://crm.example.com/hook")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.locator("#create-form .error")).to_contain_text("http", timeout=WAIT)
    expect(page.locator("main")).to_contain_text("No webhooks yet")

    page.fill("input[name=url]", receiver.url)
    page.fill("input[name=description]", "CRM sync")
    page.get_by_role("button", name="Create webhook").click()
    secret = page.locator("#new-secret")
    expect(secret).to_be_visible(timeout=WAIT)
    expect(page.locator(".webhook-table")).to_contain_text("CRM sync")
    link = page.get_by_role("link", name="Open the webhook")
    webhook_id = re.search(r"/webhooks/(\d+)", link.get_attribute("href")).group(1)
    receiver.secrets[webhook_id] = secret.inner_text().strip()

    # The secret is shown once: the webhook page does not show it again.
    link.click()
    expect(page.locator("h1")).to_have_text(receiver.url)
    expect(page.locator("#new-secret")).to_have_count(0)
    expect(page.locator("#delivery-log")).to_contain_text("No deliveries yet")

    # The receiver fails the first test event: the log says so and offers a retry.
    receiver.statuses = [500]
    page.get_by_role("button", name="Send test event").click()
    log = page.locator("#delivery-log")
    expect(log.locator("tbody tr")).to_have_count(1, timeout=WAIT)
    expect(log).to_contain_text("retrying")
    expect(log).to_contain_text("HTTP 500")
    expect(page.locator("#toast")).to_contain_text("Test event queued", timeout=WAIT)

    expect(log.locator(".stat", has_text="Retrying")).to_contain_text("1")
    log.get_by_role("button", name="Retry now").click()
    expect(log.locator(".badge", has_text="delivered")).to_be_visible(timeout=WAIT)
    # The counts above the log follow the same refresh.
    expect(log.locator(".stat", has_text="Delivered")).to_contain_text("1")
    expect(log.locator(".stat", has_text="Retrying")).to_contain_text("0")
    assert [r["events"][0]["action"] for r in receiver.requests] == ["TEST", "TEST"]
    assert all(r["signed"] for r in receiver.requests)

    # The status filter narrows the log; an empty status says so.
    log.get_by_role("link", name="Failed").click()
    expect(log).to_contain_text("No failed deliveries", timeout=WAIT)
    expect(page).to_have_url(re.compile(r"status=failed"))

    # Delete asks first, then the list is empty again.
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("main")).to_contain_text("No webhooks yet", timeout=WAIT)
    assert len(questions) == 1 and "Delete this webhook" in questions[0]
