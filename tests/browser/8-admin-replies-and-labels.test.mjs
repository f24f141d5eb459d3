// The admin console's Replies & labels view against the real server: the
// admin creates, edits and deletes a canned reply and a label in the page, and
// each step is checked in what the API serves an agent (GET /api/canned-replies,
// GET /api/labels). Nothing is stubbed.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ADMIN, AGENT, DESKTOP, PHONE, launchBrowser, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import { rest, signInByApi, uniqueWord } from './scenario.mjs';

describe('the admin console manages canned replies and labels', () => {
  let browser;
  let page;
  let record;
  let violations;
  let agent;
  const shortcut = uniqueWord('late-');
  const title = 'Parcel running late';
  const content = 'Hi {name}, your parcel is on its way and should reach you within 2 business days.';
  const labelName = uniqueWord('vip-');
  const labelColour = '#0f766e';

  /** What an agent is served. */
  const agentReplies = async () => (await rest('/api/canned-replies', { token: agent.token, expect: 200 })).data;
  const agentLabels = async () => (await rest('/api/labels', { token: agent.token, expect: 200 })).data;
  const replyRow = () => page.locator(`[data-testid=admin-canned-row][data-shortcut="${shortcut}"]`);
  const labelItem = () => page.locator(`[data-testid=admin-label-item][data-name="${labelName}"]`);

  before(async () => {
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'admin');
    violations = await watchCsp(page);
    agent = await signInByApi(AGENT);
  });

  after(async () => {
    await browser?.close();
  });

  it('lists the canned replies and labels the server has', async () => {
    await signIn(page, '/admin#replies', ADMIN);
    await page.getByTestId('admin-view-replies').waitFor();
    const replies = await agentReplies();
    await until(async () => (await page.getByTestId('admin-canned-row').count()) === replies.length, 'a row per canned reply');
    const shown = await page.getByTestId('admin-canned-shortcut-text').allTextContents();
    assert.deepEqual(shown, replies.map((r) => r.shortcut).sort((a, b) => a.localeCompare(b)));
    const labels = await agentLabels();
    await until(async () => (await page.getByTestId('admin-label-item').count()) === labels.length, 'an item per label');
  });

  it('creates a canned reply that agents are then served, and refuses a taken shortcut', async () => {
    const before = (await agentReplies()).length;
    await page.getByTestId('admin-canned-shortcut').fill(shortcut);
    await page.getByTestId('admin-canned-title-input').fill(title);
    await page.getByTestId('admin-canned-content').fill(content);
    await page.getByTestId('admin-canned-submit').click();
    await page.locator('[data-testid=admin-canned-form-ok]:not([hidden])').waitFor();
    await replyRow().waitFor();
    assert.equal(await replyRow().getByTestId('admin-canned-title-text').textContent(), title);
    assert.equal(await replyRow().getByTestId('admin-canned-content-text').textContent(), content);
    assert.equal(await page.getByTestId('admin-canned-shortcut').inputValue(), '', 'the form is cleared for the next one');

    const served = (await agentReplies()).find((r) => r.shortcut === shortcut);
    assert.ok(served, 'GET /api/canned-replies serves the new reply to an agent');
    assert.deepEqual({ shortcut: served.shortcut, title: served.title, content: served.content }, { shortcut, title, content });
    assert.equal((await agentReplies()).length, before + 1);

    // The same shortcut again: the server says it is taken, and the page says so.
    await page.getByTestId('admin-canned-shortcut').fill(shortcut);
    await page.getByTestId('admin-canned-title-input').fill('Another');
    await page.getByTestId('admin-canned-content').fill('Another text');
    await page.getByTestId('admin-canned-submit').click();
    await page.locator('[data-testid=admin-canned-form-error]:not([hidden])').waitFor();
    assert.match(await page.getByTestId('admin-canned-form-error').textContent(), /taken/);
    assert.equal((await agentReplies()).length, before + 1, 'nothing more was stored');
    await page.getByTestId('admin-canned-shortcut').fill('');
    await page.getByTestId('admin-canned-title-input').fill('');
    await page.getByTestId('admin-canned-content').fill('');
    await screenshot(page, 'admin-replies-and-labels', { fullPage: true });
  });

  it('edits the reply in its row, and agents are served the new text', async () => {
    await replyRow().getByTestId('admin-canned-edit').click();
    await replyRow().getByTestId('admin-canned-edit-title').fill('Parcel delayed');
    await replyRow().getByTestId('admin-canned-edit-content').fill('Hi {name}, sorry: your parcel is delayed by a day.');
    await replyRow().getByTestId('admin-canned-save').click();
    await until(async () => (await replyRow().getByTestId('admin-canned-title-text').textContent().catch(() => '')) === 'Parcel delayed', 'the saved title in the row');
    const served = (await agentReplies()).find((r) => r.shortcut === shortcut);
    assert.equal(served.title, 'Parcel delayed');
    assert.equal(served.content, 'Hi {name}, sorry: your parcel is delayed by a day.');

    // Cancelling an edit stores nothing.
    await replyRow().getByTestId('admin-canned-edit').click();
    await replyRow().getByTestId('admin-canned-edit-title').fill('Not this');
    await replyRow().getByTestId('admin-canned-cancel').click();
    assert.equal(await replyRow().getByTestId('admin-canned-title-text').textContent(), 'Parcel delayed');
    assert.equal((await agentReplies()).find((r) => r.shortcut === shortcut).title, 'Parcel delayed');
  });

  it('deletes the reply after asking again in the page, and agents are no longer served it', async () => {
    await replyRow().getByTestId('admin-canned-delete').click();
    // Kept on "Keep".
    await replyRow().getByTestId('admin-canned-delete-cancel').click();
    assert.equal(await replyRow().count(), 1);
    await replyRow().getByTestId('admin-canned-delete').click();
    await replyRow().getByTestId('admin-canned-delete-confirm').click();
    await replyRow().waitFor({ state: 'detached' });
    assert.equal((await agentReplies()).some((r) => r.shortcut === shortcut), false);
  });

  it('creates a label that agents are then served and the search offers, and deletes it', async () => {
    await page.getByTestId('admin-label-name').fill(labelName);
    await page.getByTestId('admin-label-color').fill(labelColour);
    await page.getByTestId('admin-label-submit').click();
    await labelItem().waitFor();
    assert.equal(await labelItem().getAttribute('data-color'), labelColour);
    const served = (await agentLabels()).find((label) => label.name === labelName);
    assert.ok(served, 'GET /api/labels serves the new label to an agent');
    assert.equal(served.color, labelColour);

    // A second label of that name is refused.
    await page.getByTestId('admin-label-name').fill(labelName);
    await page.getByTestId('admin-label-submit').click();
    await page.locator('[data-testid=admin-label-form-error]:not([hidden])').waitFor();
    assert.match(await page.getByTestId('admin-label-form-error').textContent(), /exists already/);
    assert.equal((await agentLabels()).filter((label) => label.name === labelName).length, 1);

    // The conversations' label filter offers it.
    await page.getByTestId('admin-tab-conversations').click();
    await until(async () => (await page.getByTestId('admin-search-label').locator('option').allTextContents()).includes(labelName), 'the label in the search filter');
    await page.getByTestId('admin-tab-replies').click();
    await labelItem().waitFor();

    await page.setViewportSize(PHONE);
    await screenshot(page, 'admin-replies-and-labels-phone', { fullPage: true });
    await page.setViewportSize(DESKTOP);

    await labelItem().getByTestId('admin-label-delete').click();
    await labelItem().getByTestId('admin-label-delete-confirm').click();
    await labelItem().waitFor({ state: 'detached' });
    assert.equal((await agentLabels()).some((label) => label.name === labelName), false);
  });

  it('raised no dialog, page error or policy violation', () => {
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(violations, []);
  });
});
