// A fresh install, on a server of its own with no account at all: the admin
// page offers to create the first admin, signs them straight in, and from
// then on shows the normal sign-in.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { DESKTOP, launchBrowser, screenshot, until, watch, watchCsp } from './helpers.mjs';

const FRESH_URL = (process.env.FRESH_BASE_URL || '').replace(/\/$/, '');
const FIRST = { name: 'Fiona First', username: 'fiona', password: 'first-admin-password' };

describe('the first admin of a fresh install', () => {
  let browser;
  let page;
  let record;
  let violations;

  before(async () => {
    assert.ok(FRESH_URL, 'FRESH_BASE_URL is set by scripts/browser-tests.sh');
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'first admin');
    violations = await watchCsp(page);
  });

  after(async () => {
    await browser?.close();
  });

  it('offers to create the first admin instead of the sign-in', async () => {
    assert.deepEqual(await setupStatus(), { needsAdmin: true }, 'the server has no admin yet');
    await page.goto(`${FRESH_URL}/admin`);
    await page.getByTestId('setup-screen').waitFor();
    assert.equal(await page.getByTestId('login-screen').isVisible(), false);
    assert.equal(await page.getByTestId('admin-app').isVisible(), false);
    await screenshot(page, 'admin-first-admin');
  });

  it('creates the admin and lands in the admin console, signed in', async () => {
    await page.getByTestId('setup-code').fill(process.env.FRESH_SETUP_CODE || '');
    await page.getByTestId('setup-name').fill(FIRST.name);
    await page.getByTestId('setup-username').fill(FIRST.username);
    await page.getByTestId('setup-password').fill(FIRST.password);
    await page.getByTestId('setup-submit').click();
    await page.getByTestId('admin-app').waitFor();
    assert.equal(await page.getByTestId('admin-name').textContent(), FIRST.name);
    await page.locator('[data-testid=admin-live][data-state=live]').waitFor();
    assert.equal(await page.getByTestId('setup-screen').isVisible(), false);
    assert.deepEqual(await setupStatus(), { needsAdmin: false });
  });

  it('shows the normal sign-in from then on, and the new admin signs in with it', async () => {
    await page.getByTestId('admin-signout').click();
    await page.reload();
    await page.getByTestId('login-screen').waitFor();
    await until(async () => !(await page.getByTestId('setup-screen').isVisible()), 'no setup form');
    await page.getByTestId('login-username').fill(FIRST.username);
    await page.getByTestId('login-password').fill(FIRST.password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('admin-app').waitFor();
    assert.equal(await page.getByTestId('admin-name').textContent(), FIRST.name);
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(violations, []);
  });
});

async function setupStatus() {
  const response = await fetch(`${FRESH_URL}/api/setup`);
  assert.equal(response.status, 200);
  return response.json();
}
