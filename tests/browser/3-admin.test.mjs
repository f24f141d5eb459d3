// The admin console: sign-in against the real server (whose stats endpoint
// may not exist yet), and the figures, charts and agent management against
// the documented API contract, served by the test when the server lacks it.

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

  it('signs the admin in and shows the live figures, or says clearly that they are unavailable', async () => {
    await page.getByTestId('login-username').fill(ADMIN.username);
    await page.getByTestId('login-password').fill(ADMIN.password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('admin-app').waitFor();
    assert.equal(await page.getByTestId('admin-name').textContent(), ADMIN.name);
    assert.equal(await page.getByTestId('admin-kpi').count(), 8);

    await until(async () => ['live', 'error'].includes(await page.getByTestId('admin-live').getAttribute('data-state')), 'the first poll');
    const stats = await (await fetch(`${BASE_URL}/api/admin/stats`, { headers: { Authorization: `Bearer ${await token(page)}` } })).status;
    if (stats === 200) {
      assert.equal(await page.getByTestId('admin-live').getAttribute('data-state'), 'live');
      assert.equal(await page.getByTestId('admin-stats-error').isVisible(), false);
      await page.locator('[data-testid=admin-queue-chart] svg').waitFor();
    } else {
      assert.equal(await page.getByTestId('admin-live').getAttribute('data-state'), 'error');
      assert.match(await page.getByTestId('admin-stats-error').textContent(), /not available|could not be loaded/);
    }
    // The agents card lists the agents, or explains why it cannot.
    await until(async () => (await page.getByTestId('admin-agent-row').count()) > 0 || (await page.getByTestId('admin-agents-error').isVisible()),
      'the agents list or a notice');
  });

  it('keeps the admin signed in across a reload, and screenshots the page', async () => {
    await page.reload();
    await page.getByTestId('admin-app').waitFor();
    await until(async () => ['live', 'error'].includes(await page.getByTestId('admin-live').getAttribute('data-state')), 'the first poll');
    await screenshot(page, 'admin-desktop', { fullPage: true });
    await page.setViewportSize(PHONE);
    await screenshot(page, 'admin-phone', { fullPage: true });
    await page.setViewportSize(DESKTOP);
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
  });

  it('draws figures, charts and agent load from /api/admin/stats and manages agents through /api/admin/agents (contract stubs)', async () => {
    const stubbed = await browser.newContext({ viewport: DESKTOP });
    stubbed.setDefaultTimeout(10000);
    const admin = await stubbed.newPage();
    const stubRecord = watch(admin, 'admin (stubbed)');
    const agents = [
      { agentId: '00000000-0000-4000-8000-000000000001', username: 'alice', name: 'Alice Martin', role: 'agent', status: 'online', maxConcurrent: 5, activeSessions: 3, disabled: false },
      { agentId: '00000000-0000-4000-8000-000000000002', username: 'bruno', name: 'Bruno Díaz', role: 'agent', status: 'away', maxConcurrent: 4, activeSessions: 4, disabled: false },
      { agentId: '00000000-0000-4000-8000-000000000003', username: 'chen', name: 'Chen Wei', role: 'agent', status: 'offline', maxConcurrent: 6, activeSessions: 0, disabled: false },
      { agentId: '00000000-0000-4000-8000-000000000004', username: 'ops', name: 'Ola Admin', role: 'admin', status: 'offline', maxConcurrent: 1, activeSessions: 0, disabled: false },
    ];
    let polls = 0;
    const requests = [];
    await admin.route('**/api/admin/stats', (route) => {
      polls += 1;
      const queue = [2, 3, 5, 4, 6, 3][polls % 6];
      route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({
          sessions: { bot: 4, waiting: queue, assigned: 7, closed: 112, total: 123 + queue },
          queue: { length: queue, byPriority: { high: 1, normal: queue - 1, low: 0 }, oldestWaitSeconds: 40 + polls * 7, meanWaitSeconds: 22 + polls * 3 },
          agents: {
            online: 1, away: 1, offline: 2, busy: 1,
            list: agents.filter((a) => a.role === 'agent').map(({ agentId, name, status, activeSessions, maxConcurrent }) => ({ agentId, name, status, activeSessions, maxConcurrent })),
          },
          messages: { total: 5831, lastHour: 214 },
          firstResponseSeconds: { p50: 38.5, p90: 142 },
          resolutionSeconds: { p50: 412, p90: 1630 },
          handoffRate: 0.42,
          botResolvedRate: 0.51,
          generatedAt: new Date().toISOString(),
        }),
      });
    });
    await admin.route('**/api/admin/agents**', async (route) => {
      const request = route.request();
      requests.push([request.method(), new URL(request.url()).pathname, request.postDataJSON?.() ?? null, request.headers().authorization]);
      if (request.method() === 'GET') {
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(agents) });
      }
      if (request.method() === 'POST') {
        const body = request.postDataJSON();
        const agent = { agentId: '00000000-0000-4000-8000-000000000005', username: body.username, name: body.displayName, role: body.role || 'agent', status: 'offline', maxConcurrent: body.maxConcurrent, activeSessions: 0, disabled: false };
        agents.push(agent);
        return route.fulfill({ status: 201, contentType: 'application/json', body: JSON.stringify(agent) });
      }
      if (request.method() === 'PATCH') {
        const id = new URL(request.url()).pathname.split('/').pop();
        const agent = agents.find((a) => a.agentId === id);
        Object.assign(agent, request.postDataJSON());
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(agent) });
      }
      return route.fulfill({ status: 405 });
    });

    await signIn(admin, '/admin.html', ADMIN);
    await admin.locator('[data-testid=admin-live][data-state=live]').waitFor();
    await until(() => polls >= 2, 'two polls of the stats', 15000);
    await until(async () => (await admin.locator('[data-testid=admin-queue-chart] svg path').count()) >= 2, 'the queue chart');
    assert.equal(await admin.locator('[data-kpi=agents] .kpi-value').textContent(), '1');
    assert.equal(await admin.locator('[data-kpi=first-response] .kpi-value').textContent(), '39s');
    assert.equal(await admin.locator('[data-kpi=handoff] .kpi-value').textContent(), '42%');
    assert.equal(await admin.getByTestId('admin-load-row').count(), 3);
    assert.equal(await admin.getByTestId('admin-agent-row').count(), 4);
    assert.equal(await admin.getByTestId('admin-stats-error').isVisible(), false);
    await screenshot(admin, 'admin-desktop-with-figures', { fullPage: true });
    await admin.setViewportSize(PHONE);
    await until(() => admin.locator('[data-testid=admin-queue-chart] svg').evaluate((svg, width) => svg.viewBox.baseVal.width < width, PHONE.width),
      'the charts redrawn for the phone width');
    await screenshot(admin, 'admin-phone-with-figures', { fullPage: true });
    await admin.setViewportSize(DESKTOP);

    // Create an agent.
    await admin.getByTestId('admin-create-username').fill('dana');
    await admin.getByTestId('admin-create-name').fill('Dana Scully');
    await admin.getByTestId('admin-create-password').fill('a-long-password');
    await admin.getByTestId('admin-create-max').fill('3');
    await admin.getByTestId('admin-create-submit').click();
    await admin.locator('[data-testid=admin-create-ok]:not([hidden])').waitFor();
    await admin.locator('[data-testid=admin-agent-row][data-username=dana]').waitFor();
    const created = requests.find(([method]) => method === 'POST');
    assert.deepEqual(created[2], { username: 'dana', password: 'a-long-password', displayName: 'Dana Scully', maxConcurrent: 3, role: 'agent' });
    assert.match(created[3], /^Bearer /);

    // Disable one.
    const row = admin.locator('[data-testid=admin-agent-row][data-username=chen]');
    await row.getByTestId('admin-agent-toggle').click();
    await until(async () => (await row.getByTestId('admin-agent-toggle').textContent()) === 'Enable', 'the disabled agent');
    const patch = requests.find(([method]) => method === 'PATCH');
    assert.equal(patch[1], '/api/admin/agents/00000000-0000-4000-8000-000000000003');
    assert.deepEqual(patch[2], { disabled: true });

    assert.deepEqual(stubRecord.dialogs, []);
    assert.deepEqual(stubRecord.errors, []);
    await stubbed.close();
  });
});

async function token(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard:admin')).token);
}
