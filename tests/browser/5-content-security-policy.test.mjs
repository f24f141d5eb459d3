// Every page works under the server's Content-Security-Policy (no inline
// script or style): each is loaded and used, and the browser reports no
// violation at all.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ADMIN, AGENT, BASE_URL, DESKTOP, launchBrowser, signIn, until, watch, watchCsp } from './helpers.mjs';

describe('the pages under the Content-Security-Policy', () => {
  let browser;

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
  });

  /** A fresh tab that records violations and errors, and checks the policy on the page it loads. */
  async function open(path, label) {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    const record = watch(page, label);
    const violations = await watchCsp(page);
    const response = await page.goto(`${BASE_URL}${path}`);
    assert.match(response.headers()['content-security-policy'] || '', /script-src 'self'/, `${path} carries the policy`);
    return { page, record, violations };
  }

  function clean({ page, record, violations }) {
    assert.deepEqual(violations, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(record.dialogs, []);
    return page.context().close();
  }

  it('the demo shop: its styles, its buttons and the widget they open', async () => {
    const tab = await open('/', 'shop');
    const { page } = tab;
    const heroButton = await page.locator('.btn-solid').evaluate((node) => getComputedStyle(node).backgroundColor);
    assert.equal(heroButton, 'rgb(245, 158, 11)', 'the shop stylesheet applies');
    await until(() => page.evaluate(() => Boolean(window.Switchboard)), 'the widget to load');
    await page.locator('[data-action=open-chat]').last().click();
    await page.getByTestId('sb-name').waitFor();
    await page.locator('[data-action=shop]').click();
    await until(() => page.evaluate(() => window.location.hash === '#shop'), 'the shop button to scroll to the products');
    await clean(tab);
  });

  it('the agent desk, signed in', async () => {
    const tab = await open('/agent', 'agent desk');
    await signIn(tab.page, '/agent', AGENT);
    await tab.page.getByTestId('agent-app').waitFor();
    await tab.page.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    await clean(tab);
  });

  it('the admin console, signed in, with its charts', async () => {
    const tab = await open('/admin', 'admin console');
    await signIn(tab.page, '/admin', ADMIN);
    await tab.page.locator('[data-testid=admin-live][data-state=live]').waitFor();
    await tab.page.locator('[data-testid=admin-queue-chart] svg').waitFor();
    await tab.page.getByTestId('admin-load-row').first().waitFor();
    await clean(tab);
  });

  it('the API reference', async () => {
    const tab = await open('/docs/', 'docs');
    await until(async () => (await tab.page.locator('#operations details').count()) > 10, 'the operations to render');
    await clean(tab);
  });
});
