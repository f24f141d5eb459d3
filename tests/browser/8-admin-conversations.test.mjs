// The admin console's Conversations view against the real server: a customer
// chats through the API (for a team), an agent takes the chat and writes a private note;
// the admin finds the chat by a word the customer said, narrows the search
// with each filter, and reads the chat, the note marked as private. Nothing is
// stubbed: what the page lists and shows is checked against what the API says.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ADMIN, BASE_URL, DESKTOP, PHONE, launchBrowser, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import {
  askForAPerson, localDate, newAgent, newTeam, note, rest, say, signInByApi, staffSocket, startChat, tidyUp, uniqueWord, visitor,
} from './scenario.mjs';

describe('the admin console finds and reads any conversation', () => {
  let browser;
  let page;
  let record;
  let violations;
  let admin;
  let agent;
  let agentSocket;
  const word = uniqueWord('parcel');
  const customerName = `Quentin ${uniqueWord('Z')}`;
  const customerSaid = `My ${word} parcel arrived with the lid cracked`;
  const agentSaid = 'Sorry to hear that: I am sending a new one today.';
  const noteText = `Replacement ${uniqueWord('order')} approved by the warehouse`;
  const labelName = uniqueWord('damaged-');
  let sessionId;
  let team;
  let otherTeam;
  let label;

  const results = () => page.getByTestId('admin-search-result');
  const resultIds = () => results().evaluateAll((items) => items.map((item) => item.dataset.sessionId));
  const summary = () => page.getByTestId('admin-search-summary').textContent();

  /** Waits for a search to settle (its summary says what was found) and returns the ids listed. */
  async function settled() {
    await until(async () => !/…$/.test(await summary()), 'the search to finish');
    return resultIds();
  }

  async function search(text) {
    await page.getByTestId('admin-search-q').fill(text);
    await page.getByTestId('admin-search-q').press('Enter');
    return settled();
  }

  before(async () => {
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'admin');
    violations = await watchCsp(page);
    admin = await signInByApi(ADMIN);

    // The story: a customer tells the bot, asks for a person, and a new agent takes it.
    team = await newTeam(admin, `Returns ${uniqueWord('T')}`);
    otherTeam = await newTeam(admin, `Billing ${uniqueWord('T')}`);
    const customer = await visitor(customerName);
    sessionId = await startChat(customer, { team: team.name });
    await say(customer, sessionId, customerSaid);
    agent = await newAgent(admin, { username: uniqueWord('reader-'), name: 'Rita Reader' });
    agentSocket = await staffSocket(await context.newPage(), agent);
    await agentSocket.request('agent:join', {});
    await agentSocket.request('agent:set_status', { status: 'away' });
    await askForAPerson(customer, sessionId);
    await agentSocket.request('agent:pickup_session', { sessionId });
    await say(agent, sessionId, agentSaid);
    await note(agent, sessionId, noteText);
    // A label on it, which the admin made (the Replies & labels view has its own test).
    label = (await rest('/api/admin/labels', { method: 'POST', token: admin.token, body: { name: labelName, color: '#be185d' }, expect: 201 })).data;
    await rest(`/api/sessions/${sessionId}/labels`, { method: 'PUT', token: admin.token, body: { labels: [labelName] }, expect: 200 });
  });

  after(async () => {
    await agentSocket?.close().catch(() => {});
    await browser?.close();
    if (admin) await tidyUp(admin, { sessions: [sessionId].filter(Boolean), teams: [team, otherTeam].filter(Boolean), labels: [label].filter(Boolean), agents: [agent].filter(Boolean) });
  });

  it('opens the Conversations view, listing the newest chats first', async () => {
    await signIn(page, '/admin', ADMIN);
    await page.getByTestId('admin-app').waitFor();
    await page.getByTestId('admin-tab-conversations').click();
    await page.getByTestId('admin-view-conversations').waitFor();
    assert.equal(await page.getByTestId('admin-view-operations').isVisible(), false);
    assert.match(page.url(), /#conversations$/);
    const listed = await settled();
    const newest = (await rest('/api/sessions?limit=30', { token: admin.token, expect: 200 })).data.sessions.map((s) => s.sessionId);
    assert.deepEqual(listed, newest, 'the page lists what GET /api/sessions lists, in its order');
    assert.equal(listed[0], sessionId, 'the newest chat first');
  });

  it('finds the chat by a word the customer said, and reads it with the note marked private', async () => {
    assert.deepEqual(await search(word.toUpperCase()), [sessionId], 'only the chat that said it, whatever the case');
    const result = page.locator(`[data-testid=admin-search-result][data-session-id="${sessionId}"]`);
    assert.equal(await result.getByTestId('admin-search-result-customer').textContent(), customerName);
    assert.equal(await result.getByTestId('admin-search-result-agent').textContent(), 'Rita Reader');
    assert.equal(await result.getByTestId('admin-search-result-status').textContent(), 'With an agent');
    assert.deepEqual(await result.getByTestId('admin-label-chip').allTextContents(), [labelName]);
    assert.equal(await result.getByTestId('admin-search-result-team').textContent(), team.name);
    assert.equal(await summary(), '1 conversation, newest first');

    await result.click();
    const reader = page.getByTestId('admin-reader');
    await until(async () => (await reader.getAttribute('data-session-id')) === sessionId && (await reader.getAttribute('aria-busy')) === null, 'the reader to load the chat');
    assert.match(page.url(), new RegExp(`#conversations/${sessionId}$`));
    assert.equal(await page.getByTestId('admin-reader-title').textContent(), customerName);
    assert.equal(await page.getByTestId('admin-reader-agent').textContent(), 'Rita Reader');
    assert.equal(await page.getByTestId('admin-reader-team').textContent(), team.name);

    // Every message the API gives an admin, in order, as text; the note marked private.
    const stored = (await rest(`/api/sessions/${sessionId}/messages?limit=200`, { token: admin.token, expect: 200 })).data.messages;
    const shown = await page.getByTestId('admin-reader-message').evaluateAll((items) => items.map((item) => ({
      seq: Number(item.dataset.seq),
      sender: item.dataset.sender,
      text: item.querySelector('[data-testid=admin-reader-text]').textContent,
      private: Boolean(item.querySelector('[data-testid=admin-reader-note-label]')),
    })));
    assert.deepEqual(shown, stored.map((m) => ({ seq: m.seq, sender: m.sender, text: m.content, private: m.sender === 'note' })));
    assert.ok(shown.some((m) => m.sender === 'customer' && m.text === customerSaid), "the customer's words");
    assert.ok(shown.some((m) => m.sender === 'agent' && m.text === agentSaid), "the agent's answer");
    const noteLine = page.locator('[data-testid=admin-reader-message][data-sender=note]');
    assert.equal(await noteLine.count(), 1);
    assert.equal(await noteLine.getByTestId('admin-reader-text').textContent(), noteText);
    assert.equal(await noteLine.getByTestId('admin-reader-note-label').textContent(), 'Private note');
    // Visibly apart from the replies: its own colours, not an agent's bubble.
    const colours = async (sender) => page.locator(`[data-testid=admin-reader-message][data-sender=${sender}] [data-testid=admin-reader-text]`).first()
      .evaluate((node) => `${getComputedStyle(node).backgroundColor} ${getComputedStyle(node).borderStyle}`);
    assert.notEqual(await colours('note'), await colours('agent'));
    await screenshot(page, 'admin-conversations', { fullPage: true });

    // A private note's words find the chat too.
    assert.deepEqual(await search(noteText.split(' ')[1]), [sessionId]);
  });

  it('says so when no conversation matches', async () => {
    assert.deepEqual(await search(uniqueWord('nobodysaid')), []);
    await page.getByTestId('admin-search-empty').waitFor();
    assert.match(await page.getByTestId('admin-search-empty').textContent(), /No conversations found/);
    assert.equal(await summary(), 'No conversations found');
  });

  it('narrows the search by status, agent, team, label, dates and rating, as the API does', async () => {
    await search(word);
    const form = page.getByTestId('admin-search-form');
    const narrowed = async (testid, value) => {
      const field = form.getByTestId(testid);
      if ((await field.evaluate((node) => node.tagName)) === 'SELECT') await field.selectOption(value);
      else await field.fill(value);
      return settled();
    };
    // Each filter alone, then back to any.
    assert.deepEqual(await narrowed('admin-search-status', 'closed'), []);
    assert.deepEqual(await narrowed('admin-search-status', 'assigned'), [sessionId]);
    await narrowed('admin-search-status', '');

    const agents = await form.getByTestId('admin-search-agent').locator('option').allTextContents();
    assert.ok(agents.includes('Rita Reader') && agents.includes('Alice Martin'), `every agent to choose from: ${agents}`);
    assert.deepEqual(await narrowed('admin-search-agent', { label: 'Alice Martin' }), []);
    assert.deepEqual(await narrowed('admin-search-agent', { label: 'Rita Reader' }), [sessionId]);
    await narrowed('admin-search-agent', '');

    assert.deepEqual(await narrowed('admin-search-team', { label: otherTeam.name }), []);
    assert.deepEqual(await narrowed('admin-search-team', { label: team.name }), [sessionId]);
    await narrowed('admin-search-team', '');

    // The label filter on its own (no words) lists exactly the chats with it.
    await page.getByTestId('admin-search-q').fill('');
    assert.deepEqual(await narrowed('admin-search-label', labelName), [sessionId]);
    const withLabel = (await rest(`/api/sessions?label=${encodeURIComponent(labelName)}`, { token: admin.token, expect: 200 })).data.sessions;
    assert.deepEqual(withLabel.map((s) => s.sessionId), [sessionId]);
    await narrowed('admin-search-label', '');
    await search(word);

    assert.deepEqual(await narrowed('admin-search-to', localDate(-1)), [], 'nothing started by yesterday');
    assert.deepEqual(await narrowed('admin-search-to', localDate(0)), [sessionId]);
    assert.deepEqual(await narrowed('admin-search-from', localDate(1)), [], 'a range from tomorrow to today is refused');
    assert.match(await page.getByTestId('admin-search-error').textContent(), /after/);
    assert.deepEqual(await narrowed('admin-search-from', localDate(0)), [sessionId]);
    await page.getByTestId('admin-search-to').fill('');
    assert.deepEqual(await narrowed('admin-search-from', localDate(1)), [], 'nothing started from tomorrow');
    await narrowed('admin-search-from', '');

    assert.deepEqual(await narrowed('admin-search-rating', '5'), [], 'nobody rated it');
    await narrowed('admin-search-rating', '');
    assert.deepEqual(await resultIds(), [sessionId]);

    // Clearing the form lists the newest chats again.
    await page.getByTestId('admin-search-reset').click();
    await until(async () => (await page.getByTestId('admin-search-q').inputValue()) === '', 'the form to clear');
    const newest = (await rest('/api/sessions?limit=30', { token: admin.token, expect: 200 })).data.sessions.map((s) => s.sessionId);
    assert.deepEqual(await settled(), newest);
  });

  it('opens a chat from its address, and works on a phone', async () => {
    await page.goto('about:blank');
    await page.goto(`${BASE_URL}/admin#conversations/${sessionId}`);
    await page.getByTestId('admin-view-conversations').waitFor();
    await until(async () => (await page.getByTestId('admin-reader-message').count()) > 0, 'the chat in the reader');
    assert.ok((await page.getByTestId('admin-reader-text').allTextContents()).includes(customerSaid));
    await page.setViewportSize(PHONE);
    await screenshot(page, 'admin-conversations-phone', { fullPage: true });
    await page.setViewportSize(DESKTOP);
    // Back to the operations view by its tab.
    await page.getByTestId('admin-tab-operations').click();
    await page.getByTestId('admin-view-operations').waitFor();
    await page.locator('[data-testid=admin-queue-chart] svg').waitFor();
  });

  it('raised no dialog, page error or policy violation', () => {
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(violations, []);
  });
});
