// Shared by the browser tests: the server under test, Chromium, and small
// waiting helpers (no fixed sleeps: every wait is for a condition).

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through scripts/browser-tests.sh`);
  return value;
}

export const BASE_URL = required('BASE_URL').replace(/\/$/, '');
export const AGENT = { username: required('AGENT_USERNAME'), password: required('AGENT_PASSWORD'), name: process.env.AGENT_NAME || required('AGENT_USERNAME') };
export const ADMIN = { username: required('ADMIN_USERNAME'), password: required('ADMIN_PASSWORD'), name: process.env.ADMIN_NAME || required('ADMIN_USERNAME') };
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || resolve(here, '../../target/screenshots');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

/** Headless Chromium from the OS; Playwright gives it a fresh temporary profile (--user-data-dir). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** A browser with a customer's page and an agent's page, each in a context of its own (10 s timeouts). */
export async function customerAndAgentPages() {
  const browser = await launchBrowser();
  const [customer, agent] = await Promise.all([0, 1].map(async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    return context.newPage();
  }));
  return { browser, customer, agent };
}

/**
 * Records every JavaScript dialog (alert/confirm/prompt) and uncaught page
 * error, so a test can assert that none happened.
 */
export function watch(page, label) {
  const record = { dialogs: [], errors: [] };
  page.on('dialog', async (dialog) => {
    record.dialogs.push(`${label}: ${dialog.type()} "${dialog.message()}"`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => record.errors.push(`${label}: ${error.message}`));
  return record;
}

/**
 * Records every Content-Security-Policy violation on the page. The browser
 * fires `securitypolicyviolation` for each (also from inside the widget's
 * shadow root); the listener is installed before any page script runs.
 */
export async function watchCsp(page) {
  const violations = [];
  await page.exposeFunction('__reportCspViolation', (text) => violations.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__reportCspViolation(`${event.effectiveDirective} blocked ${event.blockedURI || 'an inline script or style'} (${event.sourceFile || 'the page'}:${event.lineNumber})`);
    });
  });
  return violations;
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeout` ms. */
export async function until(check, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function screenshot(page, name, { fullPage = false } = {}) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

/** Signs in on /agent.html or /admin.html (the server may also serve them at /agent and /admin). */
export async function signIn(page, path, { username, password }) {
  await page.goto(`${BASE_URL}${path}`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/** The widget's rendered messages, read through its (open) shadow root. */
export async function widgetMessages(page) {
  return page.locator('[data-testid=sb-messages] > [data-testid=sb-message]').evaluateAll((items) => items.map((li) => ({
    seq: li.dataset.seq ? Number(li.dataset.seq) : null,
    id: li.dataset.messageId || null,
    sender: li.dataset.sender,
    status: li.dataset.status || null,
    text: li.querySelector('[data-testid=sb-message-text]')?.textContent ?? '',
  })));
}

/** The agent desk's rendered messages in the open chat. */
export async function agentMessages(page, sessionId) {
  const scope = sessionId ? `[data-testid=agent-chat][data-session-id="${sessionId}"]` : '[data-testid=agent-chat]:not([hidden])';
  return page.locator(`${scope} [data-testid=agent-messages] > [data-testid=agent-message]`).evaluateAll((items) => items.map((li) => ({
    seq: li.dataset.seq ? Number(li.dataset.seq) : null,
    id: li.dataset.messageId || null,
    sender: li.dataset.sender,
    status: li.dataset.status || null,
    text: li.querySelector('[data-testid=agent-message-text]')?.textContent ?? '',
  })));
}

/** Seqs must be 1..n, each once, in order: nothing lost, nothing doubled. */
export function assertContiguous(messages, assert, where) {
  const seqs = messages.map((m) => m.seq);
  assert.ok(seqs.every((seq) => Number.isInteger(seq)), `${where}: every message is confirmed (${JSON.stringify(seqs)})`);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${where}: seqs are 1..${seqs.length} in order, no gap and no duplicate`);
  const ids = new Set(messages.map((m) => m.id));
  assert.equal(ids.size, messages.length, `${where}: no message id appears twice`);
}
