// Private notes on the agent desk against the real server: a note the agent
// writes stays with the staff (the customer's page never receives it, live or
// on reload), and the note left when closing shows with the closed chat.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  AGENT, BASE_URL, DESKTOP, agentMessages, launchBrowser, screenshot, signIn, until, watch, watchCsp, widgetMessages,
} from './helpers.mjs';

const CUSTOMER_NAME = 'Carol Notes';
const NOTE = 'Refund R-7781 went out on 3 May; the bank is slow. Do not offer a second refund.';
const REPLY = 'I can see your refund: it is on its way and should reach you within 5 business days.';
const CLOSE_NOTE = 'Refund confirmed with finance; nothing more to do.';
const RATING_COMMENT = 'Very helpful, thank you';

describe('private notes', () => {
  let browser;
  let customer;
  let agent;
  const watched = [];
  let cspViolations;
  // Every frame the customer's browser received on any socket, as sent.
  const customerFrames = [];
  let firstSession;

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
    browser = await launchBrowser();
    const customerContext = await browser.newContext({ viewport: DESKTOP });
    const agentContext = await browser.newContext({ viewport: DESKTOP });
    customerContext.setDefaultTimeout(10000);
    agentContext.setDefaultTimeout(10000);
    customer = await customerContext.newPage();
    agent = await agentContext.newPage();
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
    // Away: chats come from the queue by hand, not by themselves.
    await agent.locator('[data-testid=agent-status-toggle][data-status=online]').waitFor();
    await agent.getByTestId('agent-status-toggle').click();
    await agent.locator('[data-testid=agent-status-toggle][data-status=away]').waitFor();

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

  it('raised no dialog, no page error and no Content-Security-Policy violation', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, [], 'no dialog opened');
      assert.deepEqual(record.errors, [], 'no uncaught page error');
    }
    assert.deepEqual(cspViolations, []);
  });
});
