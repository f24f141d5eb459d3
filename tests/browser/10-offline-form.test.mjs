// Business hours in the widget: outside a team's hours (a holiday today, set
// by an admin through the API) the widget says the team is closed and when it
// opens, and offers to leave a message with an email address; the message
// waits in the queue as an offline request.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { ADMIN, BASE_URL, DESKTOP, launchBrowser, screenshot, until, watch } from './helpers.mjs';
import { newTeam, rest, signInByApi, tidyUp, utcDate } from './scenario.mjs';

const TEAM = `Night desk ${randomUUID().slice(0, 8)}`;

/** A page of the shop, on the server's own origin, with the widget for the team. */
const SHOP_HTML = `<!doctype html>
<html><head><title>Acme after hours</title></head>
<body><h1>Acme</h1>
<script src="${BASE_URL}/widget.js" defer data-title="Acme Help" data-team="${TEAM}"></script>
</body></html>`;

describe('the offline form in the widget', () => {
  let browser;
  let admin;
  let team;
  const sessions = [];

  before(async () => {
    browser = await launchBrowser();
    admin = await signInByApi(ADMIN);
    team = await newTeam(admin, TEAM);
    // Open around the clock, but today and tomorrow are holidays: closed now, whatever the time.
    const day = [{ open: '00:00', close: '24:00' }];
    const hours = await rest(`/api/admin/teams/${team.id}/hours`, {
      method: 'PUT', token: admin.token, expect: 200,
      body: {
        timeZone: 'UTC',
        weekly: { monday: day, tuesday: day, wednesday: day, thursday: day, friday: day, saturday: day, sunday: day },
        holidays: [utcDate(0), utcDate(1)],
      },
    });
    assert.equal(hours.data.openNow, false);
  });

  after(async () => {
    if (admin) await tidyUp(admin, { sessions, teams: team ? [team] : [] });
    await browser?.close();
  });

  it('says the team is closed, takes a message and an email address, and the request waits as offline', async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    const record = watch(page, 'shop page');
    // A page on the server's own origin (and address space), as a shop that hosts the widget.
    await page.goto(`${BASE_URL}/health`);
    await page.setContent(SHOP_HTML);

    await page.getByTestId('sb-launcher').click();
    await page.getByTestId('sb-name').fill('Nora Night');
    await page.getByTestId('sb-start').click();

    const offline = page.getByTestId('sb-offline');
    await offline.waitFor();
    const said = await page.getByTestId('sb-offline-text').textContent();
    assert.match(said, /^We're closed now — we open .+\.$/, said);
    assert.equal(await page.getByTestId('sb-offline-form').isVisible(), true);
    await screenshot(page, 'offline-form');

    const words = `My order ${randomUUID().slice(0, 8)} has not arrived.`;
    await page.getByTestId('sb-offline-email').fill('nora@example.com');
    await page.getByTestId('sb-offline-message').fill(words);
    await page.getByTestId('sb-offline-submit').click();

    const done = page.getByTestId('sb-offline-done');
    await done.waitFor();
    assert.match(await done.textContent(), /We will answer at nora@example\.com\./);
    assert.equal(await page.getByTestId('sb-offline-form').isVisible(), false, 'the form gives way to the confirmation');
    assert.match(await page.getByTestId('sb-subtitle').textContent(), /answer by email/);
    // The message is in the chat, as the customer's own.
    const mine = page.locator('[data-testid=sb-message][data-sender=customer]');
    await mine.first().waitFor();
    assert.equal(await mine.first().getByTestId('sb-message-text').textContent(), words);
    await screenshot(page, 'offline-form-sent');

    // The request waits on the queue board as offline, with the customer's words.
    let item;
    await until(async () => {
      const board = await rest('/api/queue', { token: admin.token, expect: 200 });
      item = board.data.find((entry) => entry.preview === words);
      return Boolean(item);
    }, 'the offline request on the queue board');
    sessions.push(item.sessionId);
    assert.equal(item.status, 'offline');
    assert.equal(item.teamId, team.id);
    assert.equal(item.customerName, 'Nora Night');
    const session = await rest(`/api/sessions/${item.sessionId}`, { token: admin.token, expect: 200 });
    assert.equal(session.data.status, 'offline');

    assert.deepEqual(record.errors, []);
    assert.deepEqual(record.dialogs, []);
    await context.close();
  });
});
