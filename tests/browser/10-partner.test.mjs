// A third participant, in three browser pages against the real server: the
// customer in the widget, Alice at the agent desk, and a restaurant's member
// on the partner page. Alice invites the restaurant from the desk; the
// restaurant writes and both others see its message under its name; Alice
// writes and the restaurant sees it; Alice removes the restaurant and its
// page shows the chat as removed. The organisation and its account are made
// by the admin over the REST API, as an admin would.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  AGENT, BASE_URL, DESKTOP, agentMessages, launchBrowser, screenshot, signIn, until, watch, watchCsp, widgetMessages,
} from './helpers.mjs';
import { adminToken, customerHandedTo, login, rest, setPresence, tag } from './desk.mjs';

const CUSTOMER_NAME = 'Paula Hungry';
const QUESTION = 'My pizza from order 7781 is 40 minutes late';
const ALICE_ASKS = 'Let me ask the restaurant directly.';
const ROMA_SAYS = 'Sorry Paula, your pizza left the oven 5 minutes ago.';
const ALICE_THANKS = 'Thank you, Pizza Roma!';

describe('a restaurant invited into a chat on the partner page', () => {
  const run = tag();
  const ORG = `Pizza Roma ${run}`;
  const MEMBER = { username: `ana.${run}`, password: `pw-${run}-${run}`, name: 'Ana' };
  const shownAs = `${MEMBER.name} (${ORG})`;

  let browser;
  let customer;
  let alice;
  let partner;
  let orgId;
  let sessionId;
  let cspViolations;
  const watched = [];

  const chatOf = (page) => page.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);
  const partnerMessages = () => partner.locator('[data-testid=partner-messages] > [data-testid=partner-message]').evaluateAll((items) => items.map((li) => ({
    seq: li.dataset.seq ? Number(li.dataset.seq) : null,
    sender: li.dataset.sender,
    name: li.querySelector('[data-testid=partner-message-sender]')?.textContent ?? '',
    text: li.querySelector('[data-testid=partner-message-text]')?.textContent ?? '',
  })));

  before(async () => {
    browser = await launchBrowser();
    const pages = [];
    for (let i = 0; i < 3; i += 1) {
      const context = await browser.newContext({ viewport: DESKTOP });
      context.setDefaultTimeout(10000);
      pages.push(await context.newPage());
    }
    [customer, alice, partner] = pages;
    watched.push(watch(customer, 'customer'), watch(alice, 'alice'), watch(partner, 'partner'));
    cspViolations = await watchCsp(partner);

    const token = await adminToken();
    const org = await rest('/api/admin/partners', { method: 'POST', token, body: { name: ORG } });
    assert.equal(org.status, 201, JSON.stringify(org.data));
    orgId = org.data.id;
    const account = await rest(`/api/admin/partners/${orgId}/accounts`, {
      method: 'POST', token, body: { username: MEMBER.username, password: MEMBER.password, displayName: MEMBER.name },
    });
    assert.equal(account.status, 201, JSON.stringify(account.data));
  });

  after(async () => {
    await browser?.close();
  });

  it('has the customer with Alice, and the restaurant signed in with no chat yet', async () => {
    await signIn(alice, '/agent.html', AGENT);
    await setPresence(alice, 'away');
    sessionId = await customerHandedTo(customer, alice, { name: CUSTOMER_NAME, agentName: AGENT.name, question: QUESTION });
    await chatOf(alice).getByTestId('agent-input').fill(ALICE_ASKS);
    await chatOf(alice).getByTestId('agent-send').click();
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === ALICE_ASKS), "Alice's message in the widget");

    await signIn(partner, '/partner', MEMBER);
    await partner.locator('[data-testid=partner-connection][data-state=open]').waitFor();
    // The page names the member as the chats will: with the organisation.
    await until(async () => (await partner.getByTestId('partner-name').textContent()) === shownAs, "the member's name with the organisation's");
    await partner.getByTestId('partner-chats-empty').waitFor();
    assert.equal(await partner.getByTestId('partner-chat-tab').count(), 0);
  });

  it('Alice invites the restaurant from the desk; the customer sees it join; the chat appears on the partner page', async () => {
    await chatOf(alice).getByTestId('agent-partners').click();
    const dialog = alice.getByTestId('agent-partner-dialog');
    await dialog.waitFor();
    const select = alice.getByTestId('agent-partner-org');
    await until(async () => (await select.locator('option').evaluateAll((options) => options.map((o) => o.value))).includes(orgId), 'the restaurant in the picker');
    await select.selectOption(orgId);
    await alice.getByTestId('agent-partner-history').check();
    await alice.getByTestId('agent-partner-invite').click();
    await dialog.getByTestId('agent-partner-item').filter({ hasText: ORG }).waitFor();
    await screenshot(alice, 'partner-invite-dialog');
    await alice.getByTestId('agent-partner-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await chatOf(alice).getByTestId('agent-partner-count').textContent(), '1');

    const joined = `${ORG} joined the chat.`;
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'system' && m.text === joined), 'the joining note in the widget');
    const tab = partner.locator(`[data-testid=partner-chat-tab][data-session-id="${sessionId}"]`);
    await tab.waitFor();
    await tab.click();
    // Invited with the history: the customer's question is there.
    await until(async () => (await partnerMessages()).some((m) => m.text === QUESTION), 'the history on the partner page');
    const history = await partnerMessages();
    assert.ok(history.some((m) => m.sender === 'system' && m.text === joined), JSON.stringify(history));
    assert.equal(await partner.getByTestId('partner-chat-title').textContent(), CUSTOMER_NAME);
  });

  it('the restaurant writes, and the customer and Alice see it under its name', async () => {
    await partner.getByTestId('partner-input').fill(ROMA_SAYS);
    await partner.getByTestId('partner-send').click();
    await until(async () => (await partnerMessages()).some((m) => m.text === ROMA_SAYS && m.seq), 'the message acknowledged on the partner page');

    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'partner' && m.text === ROMA_SAYS), "the restaurant's message in the widget");
    const inWidget = customer.locator('[data-testid=sb-message][data-sender=partner]').filter({ hasText: ROMA_SAYS });
    assert.equal(await inWidget.getByTestId('sb-message-sender').textContent(), shownAs);
    await screenshot(customer, 'partner-message-in-widget');

    await until(async () => (await agentMessages(alice, sessionId)).some((m) => m.sender === 'partner' && m.text === ROMA_SAYS), "the restaurant's message on the desk");
    const onDesk = chatOf(alice).locator('[data-testid=agent-message][data-sender=partner]').filter({ hasText: ROMA_SAYS });
    assert.equal(await onDesk.locator('.msg-name').textContent(), shownAs);
    await onDesk.getByTestId('agent-partner-label').waitFor();
  });

  it('Alice and the customer write, and the restaurant sees both with their names', async () => {
    await chatOf(alice).getByTestId('agent-input').fill(ALICE_THANKS);
    await chatOf(alice).getByTestId('agent-send').click();
    await until(async () => (await partnerMessages()).some((m) => m.sender === 'agent' && m.text === ALICE_THANKS), "Alice's message on the partner page");
    const fromAlice = (await partnerMessages()).find((m) => m.text === ALICE_THANKS);
    assert.equal(fromAlice.name, AGENT.name);

    await customer.getByTestId('sb-input').fill('Great, thanks both');
    await customer.getByTestId('sb-input').press('Enter');
    await until(async () => (await partnerMessages()).some((m) => m.sender === 'customer' && m.text === 'Great, thanks both'), "the customer's message on the partner page");
    // The customer's typing shows on the partner page.
    await customer.getByTestId('sb-input').fill('one more');
    await partner.getByTestId('partner-typing').waitFor();
    await screenshot(partner, 'partner-chat');
    // Every page got every message once, in order.
    const seqs = (await partnerMessages()).map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, seqs.length);
  });

  it('Alice removes the restaurant: its page shows the chat as removed and the customer sees it leave', async () => {
    await chatOf(alice).getByTestId('agent-partners').click();
    const dialog = alice.getByTestId('agent-partner-dialog');
    await dialog.getByTestId('agent-partner-item').filter({ hasText: ORG }).getByTestId('agent-partner-remove').click();
    await dialog.getByTestId('agent-partner-item').filter({ hasText: ORG }).waitFor({ state: 'detached' });
    await alice.getByTestId('agent-partner-cancel').click();

    const ended = partner.getByTestId('partner-chat-ended');
    await ended.waitFor();
    assert.match(await ended.textContent(), /removed/);
    assert.equal(await partner.getByTestId('partner-composer').isVisible(), false);
    await partner.locator(`[data-testid=partner-chat-tab][data-session-id="${sessionId}"]`).waitFor({ state: 'detached' });
    await screenshot(partner, 'partner-removed');
    const left = `${ORG} left the chat.`;
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'system' && m.text === left), 'the leaving note in the widget');
    // The server agrees: the restaurant's REST view of the chat is forbidden now.
    const member = (await rest('/auth/login', { method: 'POST', body: { username: MEMBER.username, password: MEMBER.password } })).data;
    const refused = await rest(`/api/partner/sessions/${sessionId}/messages`, { token: member.token });
    assert.equal(refused.status, 403);
    assert.equal(refused.data.error, 'forbidden');
  });

  it('Alice closes the chat and is left online for the tests that run after this one', async () => {
    const token = (await login(AGENT)).token;
    const closed = await rest(`/api/sessions/${sessionId}/resolve`, { method: 'POST', token, body: {} });
    assert.equal(closed.status, 200, JSON.stringify(closed.data));
    await chatOf(alice).getByTestId('agent-chat-ended').waitFor();
    // The tests that run after this file expect the agent to start online.
    await setPresence(alice, 'online');
  });

  it('raised no dialog, no page error and no CSP violation', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, []);
      assert.deepEqual(record.errors, []);
    }
    assert.deepEqual(cspViolations, []);
    assert.ok(BASE_URL);
  });
});
