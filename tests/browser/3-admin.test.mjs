// The admin console against the real server: sign-in, the live figures and
// charts from /api/admin/stats, and managing agents through /api/admin/agents.
// Nothing is stubbed: what the page shows is checked against what the API says.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ADMIN, AGENT, BASE_URL, DESKTOP, PHONE, launchBrowser, screenshot, signIn, until, watch } from './helpers.mjs';

describe('the admin console', () => {
  let browser;
  let context;
  let page;
  let record;

  before(async () => {
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'admin');
  });

  after(async () => {
    await browser?.close();
  });

  it('refuses a wrong password and an agent account', async () => {
    await signIn(page, '/admin.html', { username: ADMIN.username, password: 'not-the-password' });
    await page.locator('[data-testid=login-error]:not([hidden])').waitFor();
    assert.equal(await page.getByTestId('login-error').textContent(), 'Wrong username or password.');

    await page.getByTestId('login-username').fill(AGENT.username);
    await page.getByTestId('login-password').fill(AGENT.password);
    await page.getByTestId('login-submit').click();
    await until(async () => /not an admin/.test(await page.getByTestId('login-error').textContent()), 'the not-an-admin message');
    assert.equal(await page.getByTestId('admin-app').isVisible(), false);
  });

  it('signs the admin in and shows the live figures and the agents', async () => {
    await page.getByTestId('login-username').fill(ADMIN.username);
    await page.getByTestId('login-password').fill(ADMIN.password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('admin-app').waitFor();
    assert.equal(await page.getByTestId('admin-name').textContent(), ADMIN.name);
    assert.equal(await page.getByTestId('admin-kpi').count(), 8);
    await page.locator('[data-testid=admin-live][data-state=live]').waitFor();
    assert.equal(await page.getByTestId('admin-stats-error').isVisible(), false);
    await page.locator('[data-testid=admin-queue-chart] svg').waitFor();
    const agents = await api(page, '/api/admin/agents');
    await until(async () => (await page.getByTestId('admin-agent-row').count()) === agents.length, 'a row per agent');
  });

  it('keeps the admin signed in across a reload, and screenshots the page', async () => {
    await page.reload();
    await page.getByTestId('admin-app').waitFor();
    await page.locator('[data-testid=admin-live][data-state=live]').waitFor();
    await screenshot(page, 'admin-desktop', { fullPage: true });
    await page.setViewportSize(PHONE);
    await screenshot(page, 'admin-phone', { fullPage: true });
    await page.setViewportSize(DESKTOP);
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
  });

  it('shows the figures /api/admin/stats gives, and creates and disables an agent through the real API', async () => {
    // The figures the page shows are the server's own.
    // (Asked again each time: the page polls, and a figure may move between two polls.)
    const shown = async (key) => (await page.locator(`[data-kpi=${key}] .kpi-value`).textContent()).trim();
    const agrees = (key, pick) => async () => (await shown(key)) === String(pick(await api(page, '/api/admin/stats')));
    await until(agrees('agents', (stats) => stats.agents.online), 'agents online as the API says', 15000);
    await until(agrees('messages', (stats) => stats.messages.lastHour), 'messages in the last hour as the API says', 15000);
    await until(agrees('queue', (stats) => stats.queue.length), 'the queue length as the API says', 15000);
    const stats = await api(page, '/api/admin/stats');
    await until(async () => (await page.getByTestId('admin-load-row').count()) === stats.agents.list.length, 'a load row per agent');
    await screenshot(page, 'admin-desktop-with-figures', { fullPage: true });

    // Create an agent: the server has it afterwards, as typed.
    await page.getByTestId('admin-create-username').fill('dana');
    await page.getByTestId('admin-create-name').fill('Dana Scully');
    await page.getByTestId('admin-create-password').fill('a-long-password');
    await page.getByTestId('admin-create-max').fill('3');
    await page.getByTestId('admin-create-submit').click();
    await page.locator('[data-testid=admin-create-ok]:not([hidden])').waitFor();
    const row = page.locator('[data-testid=admin-agent-row][data-username=dana]');
    await row.waitFor();
    const dana = (await api(page, '/api/admin/agents')).find((agent) => agent.username === 'dana');
    assert.ok(dana, 'the server has the new agent');
    assert.equal(dana.name, 'Dana Scully');
    assert.equal(dana.maxConcurrent, 3);
    assert.equal(dana.disabled, false);

    // Disable her: the server says so, and so does the page.
    await row.getByTestId('admin-agent-toggle').click();
    await until(async () => (await row.getByTestId('admin-agent-toggle').textContent()) === 'Enable', 'the disabled agent');
    const after = (await api(page, '/api/admin/agents')).find((agent) => agent.username === 'dana');
    assert.equal(after.disabled, true);
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
  });
});

async function token(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard:admin')).token);
}

/// What the real API answers the signed-in admin.
async function api(page, path) {
  const response = await fetch(`${BASE_URL}${path}`, { headers: { Authorization: `Bearer ${await token(page)}` } });
  assert.equal(response.status, 200, `${path} answered ${response.status}`);
  return response.json();
}
