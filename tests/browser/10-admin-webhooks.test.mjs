// The admin console's Webhooks view against the real server and a real
// receiver: the admin adds an endpoint in the page (a small HTTP server this
// test starts), a chat starts and is resolved through the API, the receiver gets
// both events signed with the secret the page showed once, and the page's
// deliveries list shows them delivered. Then the admin disables and deletes it.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import { ADMIN, DESKTOP, launchBrowser, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import { rest, signInByApi, startChat, tidyUp, visitor } from './scenario.mjs';

/** An HTTP endpoint on a free local port that records every request and answers 200. */
async function startReceiver() {
  const received = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      let json = null;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = null;
      }
      received.push({ headers: request.headers, body, json });
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('thanks');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { received, url: `http://127.0.0.1:${port}/hooks/switchboard`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** What a receiver does with `X-Switchboard-Signature`: HMAC-SHA256 of "<timestamp>.<body>" with the secret. */
function signedWith(request, secret) {
  const given = String(request.headers['x-switchboard-signature'] || '').replace(/^sha256=/, '');
  const expected = createHmac('sha256', secret)
    .update(`${request.headers['x-switchboard-timestamp']}.`)
    .update(request.body)
    .digest('hex');
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

describe('the admin console manages webhooks', () => {
  let browser;
  let page;
  let record;
  let violations;
  let receiver;
  let admin;
  let secret;
  let sessionId;
  const hookRow = () => page.locator('[data-testid=admin-webhook-row]', { has: page.locator(`[data-testid=admin-webhook-url-text]:text-is("${receiver.url}")`) });
  const aboutOurChat = (event) => receiver.received.filter((request) => request.json?.event === event && request.json?.data?.session?.sessionId === sessionId);

  before(async () => {
    receiver = await startReceiver();
    admin = await signInByApi(ADMIN);
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'admin');
    violations = await watchCsp(page);
  });

  after(async () => {
    // Leave no hook behind for the tests after this one.
    const hooks = (await rest('/api/admin/webhooks', { token: admin.token }).catch(() => ({ data: [] }))).data || [];
    for (const hook of hooks.filter((h) => h.url === receiver.url)) {
      await rest(`/api/admin/webhooks/${hook.id}`, { method: 'DELETE', token: admin.token }).catch(() => null);
    }
    if (sessionId) await tidyUp(admin, { sessions: [sessionId] });
    await browser?.close();
    await receiver?.close();
  });

  it('adds an endpoint for the events ticked and shows its secret once', async () => {
    await signIn(page, '/admin#webhooks', ADMIN);
    await page.getByTestId('admin-view-webhooks').waitFor();
    await page.getByTestId('admin-webhooks-summary').filter({ hasText: /endpoint/ }).waitFor();
    await page.getByTestId('admin-webhook-url').fill(receiver.url);
    for (const event of ['session.handed_over', 'session.assigned', 'session.offline_request', 'message.created', 'session.rated']) {
      await page.getByTestId(`admin-webhook-event-${event}`).uncheck();
    }
    await page.getByTestId('admin-webhook-submit').click();
    await page.locator('[data-testid=admin-webhook-secret]:not([hidden])').waitFor();
    secret = (await page.getByTestId('admin-webhook-secret-value').textContent()).trim();
    assert.match(secret, /^[0-9a-f]{64}$/);
    await hookRow().waitFor();
    assert.deepEqual(await hookRow().getByTestId('admin-webhook-events-text').locator('.pill').allTextContents(), ['session.started', 'session.closed']);
    assert.equal(await hookRow().getByTestId('admin-webhook-state').textContent(), 'Active');

    // The server has it, without the secret.
    const listed = (await rest('/api/admin/webhooks', { token: admin.token, expect: 200 })).data.find((h) => h.url === receiver.url);
    assert.deepEqual(listed.events, ['session.started', 'session.closed']);
    assert.equal(listed.secret, undefined);

    // Done hides the secret for good.
    await page.getByTestId('admin-webhook-secret-hide').click();
    assert.equal(await page.getByTestId('admin-webhook-secret').isHidden(), true);
  });

  it('a chat that starts and is resolved is delivered, signed, and listed as delivered', async () => {
    const customer = await visitor('Hook Tester');
    sessionId = await startChat(customer);
    await rest(`/api/sessions/${sessionId}/resolve`, { method: 'POST', token: admin.token, body: {}, expect: 200 });
    await until(() => aboutOurChat('session.started').length === 1 && aboutOurChat('session.closed').length === 1, 'both events at the receiver', 15000);
    for (const request of [...aboutOurChat('session.started'), ...aboutOurChat('session.closed')]) {
      assert.ok(signedWith(request, secret), 'signed with the secret the page showed');
      assert.equal(request.headers['x-switchboard-event'], request.json.event);
      assert.equal(request.headers['x-switchboard-delivery'], request.json.id);
    }

    // The page's list (read again every few seconds) shows both delivered at the first attempt.
    const delivered = (event) => hookRow().locator(`[data-testid=admin-webhook-delivery][data-event="${event}"][data-status=delivered]`);
    await until(async () => (await delivered('session.started').count()) >= 1 && (await delivered('session.closed').count()) >= 1, 'both delivered on the page', 15000);
    assert.equal(aboutOurChat('session.closed')[0].json.data.reason, 'resolved');
    const started = delivered('session.started').first();
    assert.equal(await started.getByTestId('admin-webhook-delivery-status').textContent(), 'Delivered');
    assert.equal(await started.getByTestId('admin-webhook-delivery-attempts').textContent(), '1');
    assert.equal(await started.getByTestId('admin-webhook-delivery-code').textContent(), '200');
    await screenshot(page, 'admin-webhooks', { fullPage: true });
  });

  it('disables, then deletes the endpoint', async () => {
    await hookRow().getByTestId('admin-webhook-toggle').click();
    await until(async () => (await hookRow().getByTestId('admin-webhook-state').textContent()) === 'Disabled', 'the hook disabled');
    const listed = (await rest('/api/admin/webhooks', { token: admin.token, expect: 200 })).data.find((h) => h.url === receiver.url);
    assert.equal(listed.active, false);

    await hookRow().getByTestId('admin-webhook-delete').click();
    await hookRow().getByTestId('admin-webhook-delete-confirm').click();
    await until(async () => (await hookRow().count()) === 0, 'the hook gone from the page');
    const hooks = (await rest('/api/admin/webhooks', { token: admin.token, expect: 200 })).data;
    assert.ok(!hooks.some((h) => h.url === receiver.url), 'the server has it no more');

    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(violations, []);
  });
});
