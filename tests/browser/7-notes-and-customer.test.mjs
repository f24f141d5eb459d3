// Private notes and the customer beside the chat, on the agent desk against
// the real server: a note the agent writes stays with the staff (the
// customer's page never receives it, live or on reload), and when the same
// customer comes back, the agent who takes the new chat sees who they are and
// reads their earlier chat, its outcome, rating and notes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  AGENT, BASE_URL, DESKTOP, agentMessages, customerAndAgentPages, screenshot, signIn, until, watch, watchCsp, widgetMessages,
} from './helpers.mjs';
import { setPresence } from './desk.mjs';

const CUSTOMER_NAME = 'Carol Notes';
const NOTE = 'Refund R-7781 went out on 3 May; the bank is slow. Do not offer a second refund.';
const REPLY = 'I can see your refund: it is on its way and should reach you within 5 business days.';
const CLOSE_NOTE = 'Refund confirmed with finance; nothing more to do.';
const RATING_COMMENT = 'Very helpful, thank you';

describe('private notes and the customer beside the chat', () => {
  let browser;
  let customer;
  let agent;
  const watched = [];
  let cspViolations;
  // Every frame the customer's browser received on any socket, as sent.
  const customerFrames = [];
  let firstSession;
  let secondSession;

  const agentChat = (id) => agent.locator(`[data-testid=agent-chat][data-session-id="${id}"]`);
  const widgetSession = () => customer.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('switchboard:v1:'));
    return key ? JSON.parse(localStorage.getItem(key)).sessionId || null : null;
  });
  const widgetText = () => customer.evaluate(() => {
    const host = document.querySelector('[data-testid=sb-widget]');
    return `${document.body.innerText}\n${host?.shadowRoot?.textContent || ''}`;
  });

  async function customerAsksForAPerson(sessionId) {
    await customer.getByTestId('sb-input').fill('My refund has not arrived');
    await customer.getByTestId('sb-input').press('Enter');
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === 'My refund has not arrived' && m.seq),
      "the customer's message to be acknowledged");
    await customer.getByTestId('sb-talk-to-person').click();
    await customer.getByTestId('sb-queue').waitFor();
    const item = agent.locator(`[data-testid=agent-queue-item][data-session-id="${sessionId}"]`);
    await item.waitFor();
    await item.getByTestId('agent-pickup').click();
    await agentChat(sessionId).waitFor();
    await until(async () => (await customer.getByTestId('sb-agent-name').textContent().catch(() => '')) === AGENT.name,
      "the agent's name in the widget");
  }

  before(async () => {
    ({ browser, customer, agent } = await customerAndAgentPages());
    watched.push(watch(customer, 'customer'), watch(agent, 'agent'));
    cspViolations = await watchCsp(agent);
    customer.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => customerFrames.push(String(payload))));
  });

  after(async () => {
    await browser?.close();
  });

  it('lets the agent pick up the customer who asked for a person', async () => {
    await signIn(agent, '/agent.html', AGENT);
    await agent.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    // Away: chats come from the queue by hand, not by themselves. (Whatever
    // presence an earlier test file left the agent in.)
    await setPresence(agent, 'away');

    await customer.goto(`${BASE_URL}/`);
    await customer.getByTestId('sb-launcher').click();
    await customer.getByTestId('sb-name').fill(CUSTOMER_NAME);
    await customer.getByTestId('sb-start').click();
    await customer.locator('[data-testid=sb-message][data-sender=bot]').first().waitFor();
    firstSession = await until(widgetSession, 'the session id in the widget');
    await customerAsksForAPerson(firstSession);
  });

  it('writes a private note in note mode: shown on the desk as a note, never sent to the customer', async () => {
    const chat = agentChat(firstSession);
    const composer = chat.getByTestId('agent-composer');
    const replyColour = await composer.evaluate((node) => getComputedStyle(node).backgroundColor);
    assert.equal(await composer.getAttribute('data-mode'), 'reply');
    assert.equal(await chat.getByTestId('agent-note-hint').isVisible(), false);

    await chat.getByTestId('agent-mode-note').click();
    assert.equal(await composer.getAttribute('data-mode'), 'note');
    assert.equal(await chat.getByTestId('agent-mode-note').getAttribute('aria-pressed'), 'true');
    assert.notEqual(await composer.evaluate((node) => getComputedStyle(node).backgroundColor), replyColour, 'the composer changes colour in note mode');
    assert.match(await chat.getByTestId('agent-note-hint').textContent(), /Not sent to the customer/);
    assert.match(await chat.getByTestId('agent-input').getAttribute('placeholder'), /private note/i);
    assert.equal((await chat.getByTestId('agent-send').textContent()).trim(), 'Add note');
    assert.equal(await chat.getByTestId('agent-attach').isVisible(), false, 'no files on a note');

    await chat.getByTestId('agent-input').fill(NOTE);
    await chat.getByTestId('agent-send').click();
    await until(async () => (await agentMessages(agent, firstSession)).some((m) => m.sender === 'note' && m.text === NOTE && m.seq),
      'the note to be stored and placed by its seq');
    const note = chat.locator('[data-testid=agent-message][data-sender=note]').filter({ hasText: NOTE });
    assert.equal(await note.getByTestId('agent-note-label').textContent(), 'Private note');
    assert.equal(await note.getByTestId('agent-note-author').textContent(), AGENT.name);
    assert.equal(await note.evaluate((li) => li.classList.contains('mine')), false, 'a note is not drawn as a reply');
    const noteBubble = await note.getByTestId('agent-message-text').evaluate((node) => getComputedStyle(node).backgroundColor);
    const replyBubble = await chat.locator('[data-testid=agent-message][data-sender=customer] [data-testid=agent-message-text]').first()
      .evaluate((node) => getComputedStyle(node).backgroundColor);
    assert.notEqual(noteBubble, replyBubble);
    const tab = agent.locator(`[data-testid=agent-chat-tab][data-session-id="${firstSession}"]`);
    assert.match(await tab.getByTestId('agent-chat-preview').textContent(), /^Note: /);
    // The mode stays as chosen: the next thing typed is a note too until the agent switches back.
    assert.equal(await composer.getAttribute('data-mode'), 'note');
    await screenshot(agent, 'agent-private-note');

    await chat.getByTestId('agent-mode-reply').click();
    assert.equal(await composer.getAttribute('data-mode'), 'reply');
    assert.equal((await chat.getByTestId('agent-send').textContent()).trim(), 'Send');
    await chat.getByTestId('agent-input').fill(REPLY);
    await chat.getByTestId('agent-send').click();
    await until(async () => (await agentMessages(agent, firstSession)).some((m) => m.sender === 'agent' && m.text === REPLY && m.seq),
      'the reply to be acknowledged');

    // The reply, sent after the note, reached the widget; the note did not, by any frame.
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'agent' && m.text === REPLY), 'the reply in the widget');
    const desk = await agentMessages(agent, firstSession);
    const noteSeq = desk.find((m) => m.sender === 'note').seq;
    const widget = await widgetMessages(customer);
    assert.equal(widget.find((m) => m.text === REPLY).seq, desk.find((m) => m.text === REPLY).seq);
    assert.ok(!widget.some((m) => m.seq === noteSeq || m.sender === 'note' || m.text === NOTE), 'no note in the widget');
    assert.ok(!(await widgetText()).includes('R-7781'), 'the note text appears nowhere on the customer page');
    assert.ok(customerFrames.length > 0);
    assert.ok(!customerFrames.some((frame) => frame.includes('R-7781') || frame.includes('"note"')), 'no frame to the customer carried the note');

    // A reload resumes the chat on both sides: the desk still shows the note as a note, the widget still has none.
    await agent.reload();
    await agentChat(firstSession).waitFor();
    await until(async () => (await agentMessages(agent, firstSession)).some((m) => m.sender === 'note' && m.text === NOTE),
      'the note in the history after reloading the desk');
    await customer.reload();
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === REPLY), 'the history after reloading the widget');
    assert.ok(!(await widgetText()).includes('R-7781'), 'the resumed widget has no note');
    assert.ok(!customerFrames.some((frame) => frame.includes('R-7781')), 'no resumed frame carried the note');
  });

  it('closes the chat as resolved with a close note shown to the agent, and the customer rates it', async () => {
    const chat = agentChat(firstSession);
    await chat.getByTestId('agent-close').click();
    await agent.getByTestId('agent-close-dialog').waitFor();
    await agent.getByTestId('agent-close-notes').fill(CLOSE_NOTE);
    await agent.getByTestId('agent-close-confirm').click();
    await chat.getByTestId('agent-chat-ended').waitFor();
    await until(async () => (await agent.getByTestId('agent-detail-close-note').textContent().catch(() => '')) === CLOSE_NOTE,
      'the close note in the details of the closed chat');

    await customer.getByTestId('sb-ended').waitFor();
    await customer.getByTestId('sb-rating-5').click();
    await customer.getByTestId('sb-rating-comment').fill(RATING_COMMENT);
    await customer.getByTestId('sb-rating-submit').click();
    await until(async () => /Thanks for your feedback/.test(await customer.getByTestId('sb-rating-status').textContent()), 'the rating to be stored');
    assert.ok(!(await widgetText()).includes(CLOSE_NOTE), 'the close note is not shown to the customer');
    await agentChat(firstSession).getByTestId('agent-dismiss').click();
    await agentChat(firstSession).waitFor({ state: 'detached' });
  });

  it('shows the returning customer\'s profile and earlier chat beside the new one, and opens it read only', async () => {
    await customer.getByTestId('sb-new-chat').click();
    secondSession = await until(async () => {
      const id = await widgetSession();
      return id && id !== firstSession ? id : null;
    }, 'a new session in the widget');
    await customerAsksForAPerson(secondSession);

    const panel = agent.getByTestId('agent-customer');
    await until(async () => (await panel.getByTestId('agent-customer-name').textContent().catch(() => '')) === CUSTOMER_NAME,
      "the customer's name in the Customer panel");
    // Loaded for this chat: both chats are listed (a list read during the first chat had one).
    const items = panel.getByTestId('agent-past-chat');
    await until(async () => (await items.count()) === 2, 'two chats in the list');
    assert.equal(await panel.getByTestId('agent-customer-email').textContent(), 'Not given');
    assert.notEqual((await panel.getByTestId('agent-customer-first-seen').textContent()).trim(), '');

    // The visitor info is this chat's metadata as the widget sent it: folded, every key there.
    const visitor = panel.getByTestId('agent-customer-visitor');
    assert.equal(await visitor.getAttribute('open'), null, 'folded: it is what "This chat" shows above');
    await visitor.locator('summary').click();
    const page = visitor.locator('[data-testid=agent-visitor-row][data-key=page] dd');
    assert.equal(await page.textContent(), `${BASE_URL}/`);
    assert.equal(await visitor.locator('[data-testid=agent-visitor-row][data-key=pageTitle] dd').textContent(), await customer.title());

    // Both chats, newest first: this one, then the earlier one with how it went.
    assert.deepEqual(await items.evaluateAll((lis) => lis.map((li) => li.dataset.sessionId)), [secondSession, firstSession]);
    assert.match(await items.nth(0).textContent(), /This chat/);
    const earlier = panel.locator(`[data-testid=agent-past-chat][data-session-id="${firstSession}"]`);
    assert.equal(await earlier.getByTestId('agent-past-chat-outcome').getAttribute('data-outcome'), 'resolved');
    assert.equal(await earlier.getByTestId('agent-past-chat-outcome').textContent(), 'Resolved');
    assert.equal(await earlier.getByTestId('agent-past-chat-rating').getAttribute('data-rating'), '5');
    assert.equal(await earlier.getByTestId('agent-past-chat-rating').getAttribute('aria-label'), 'Rated 5 of 5');
    assert.equal(await earlier.getByTestId('agent-past-chat-agent').textContent(), AGENT.name);
    assert.equal(await earlier.getByTestId('agent-past-chat-comment').textContent(), `“${RATING_COMMENT}”`);
    assert.equal(await earlier.getByTestId('agent-past-chat-note').textContent(), CLOSE_NOTE);
    await earlier.scrollIntoViewIfNeeded();
    await screenshot(agent, 'agent-customer-panel');

    // Opened, the earlier chat reads as it happened, the private note drawn as a note; nothing to write in.
    await earlier.getByTestId('agent-past-chat-open').click();
    const drawer = agent.getByTestId('agent-transcript');
    await drawer.waitFor();
    const transcript = drawer.getByTestId('agent-transcript-messages');
    await until(async () => (await transcript.locator('[data-testid=agent-message]').count()) > 0, 'the messages of the earlier chat');
    const read = await transcript.locator('[data-testid=agent-message]').evaluateAll((lis) => lis.map((li) => ({
      seq: Number(li.dataset.seq), sender: li.dataset.sender, text: li.querySelector('[data-testid=agent-message-text]').textContent,
    })));
    const seqs = read.map((m) => m.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'the whole chat, in order, the note included');
    assert.ok(read.some((m) => m.sender === 'customer' && m.text === 'My refund has not arrived'));
    assert.ok(read.some((m) => m.sender === 'agent' && m.text === REPLY));
    const noteItem = transcript.locator('[data-testid=agent-message][data-sender=note]');
    assert.equal(await noteItem.getByTestId('agent-message-text').textContent(), NOTE);
    assert.equal(await noteItem.getByTestId('agent-note-label').textContent(), 'Private note');
    assert.equal(await drawer.getByTestId('agent-transcript-outcome').textContent(), 'Resolved');
    assert.equal(await drawer.getByTestId('agent-transcript-note').textContent(), CLOSE_NOTE);
    assert.match(await drawer.getByTestId('agent-transcript-summary').textContent(), new RegExp(`with ${AGENT.name}`));
    assert.equal(await drawer.locator('textarea, input').count(), 0, 'read only');
    await screenshot(agent, 'agent-past-chat');
    await drawer.getByTestId('agent-transcript-close').click();
    await drawer.waitFor({ state: 'hidden' });

    // Narrower screens have no details column: the panel slides over the chat.
    await agent.setViewportSize({ width: 1000, height: 760 });
    assert.equal(await agent.getByTestId('agent-details').isVisible(), false);
    await agentChat(secondSession).getByTestId('agent-customer-toggle').click();
    await panel.waitFor();
    await screenshot(agent, 'agent-customer-panel-narrow');
    await agent.getByTestId('agent-details-close').click();
    await agent.getByTestId('agent-details').waitFor({ state: 'hidden' });
    await agent.setViewportSize(DESKTOP);

    // Done: the chat is closed, as the desk leaves it for the next test.
    await agentChat(secondSession).getByTestId('agent-close').click();
    await agent.getByTestId('agent-close-confirm').click();
    await agentChat(secondSession).getByTestId('agent-chat-ended').waitFor();
  });

  it('raised no dialog, no page error and no Content-Security-Policy violation', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, [], 'no dialog opened');
      assert.deepEqual(record.errors, [], 'no uncaught page error');
    }
    assert.deepEqual(cspViolations, []);
  });
});
