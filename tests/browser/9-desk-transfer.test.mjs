// Transfers on the agent desk against the real server, with two agents
// signed in to two desks: Alice hands an open chat straight to Bruno, chosen
// by name in the transfer dialog, which lists the colleagues with their
// presence and load and refuses the ones who cannot take it; when Bruno
// stops being available meanwhile, the server's refusal is shown in the
// dialog. Bruno's desk then has the chat with its whole history and Alice's
// has it no more. Bruno sends it on to a team's queue, where Alice finds it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  AGENT, DESKTOP, agentMessages, assertContiguous, launchBrowser, screenshot, signIn, until, watch, watchCsp, widgetMessages,
} from './helpers.mjs';
import { adminToken, customerHandedTo, login, rest, setPresence, tag } from './desk.mjs';

const CUSTOMER_NAME = 'Erin Transfer';
const QUESTION = 'I was charged twice for order 5521';
const ALICE_SAYS = 'Let me bring in my colleague from billing, who can refund the second charge.';
const BRUNO_SAYS = 'Hi Erin, Bruno from billing here: I can see both charges.';

describe('transferring a chat to a named agent or a team from the agent desk', () => {
  const run = tag();
  const BRUNO = { username: `bruno.${run}`, password: `pw-${run}-${run}`, name: 'Bruno Keller', capacity: 3 };
  const CHIDI = { username: `chidi.${run}`, password: `pw-${run}-${run}`, name: 'Chidi Okafor', capacity: 2 };
  const TEAM = `Billing ${run}`;

  let browser;
  let customer;
  let alice;
  let bruno;
  let token;
  let aliceId;
  let brunoId;
  let chidiId;
  let teamId;
  let sessionId;
  let cspViolations;
  const watched = [];

  const chatOf = (page) => page.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);
  const tabOf = (page) => page.locator(`[data-testid=agent-chat-tab][data-session-id="${sessionId}"]`);
  const dialog = (page) => page.getByTestId('agent-transfer-dialog');
  const row = (page, id) => dialog(page).locator(`[data-testid=agent-transfer-agent][data-agent-id="${id}"]`);
  const rows = (page) => dialog(page).getByTestId('agent-transfer-agent').evaluateAll((items) => items.map((item) => ({
    id: item.dataset.agentId, status: item.dataset.status, available: item.dataset.available === 'true',
    disabled: item.querySelector('input').disabled,
  })));

  before(async () => {
    browser = await launchBrowser();
    const contexts = [];
    for (let i = 0; i < 3; i += 1) {
      const context = await browser.newContext({ viewport: DESKTOP });
      context.setDefaultTimeout(10000);
      contexts.push(context);
    }
    [customer, alice, bruno] = await Promise.all(contexts.map((context) => context.newPage()));
    watched.push(watch(customer, 'customer'), watch(alice, 'alice'), watch(bruno, 'bruno'));
    cspViolations = await watchCsp(alice);

    token = await adminToken();
    aliceId = (await login(AGENT)).userId;
    // Bruno will sign in; Chidi never does (offline).
    for (const who of [BRUNO, CHIDI]) {
      const created = await rest('/api/admin/agents', {
        method: 'POST', token,
        body: { username: who.username, password: who.password, displayName: who.name, maxConcurrent: who.capacity, role: 'agent' },
      });
      assert.equal(created.status, 201, JSON.stringify(created.data));
      who.id = created.data.agentId;
    }
    brunoId = BRUNO.id;
    chidiId = CHIDI.id;
    const team = await rest('/api/admin/teams', { method: 'POST', token, body: { name: TEAM } });
    assert.equal(team.status, 201, JSON.stringify(team.data));
    teamId = team.data.id;
    const members = await rest(`/api/admin/teams/${teamId}/members`, { method: 'PUT', token, body: { agentIds: [aliceId] } });
    assert.equal(members.status, 200, JSON.stringify(members.data));
  });

  after(async () => {
    await browser?.close();
  });

  it('has Alice in a chat with a customer, and Bruno signed in to his own desk', async () => {
    await signIn(alice, '/agent.html', AGENT);
    await setPresence(alice, 'away');
    sessionId = await customerHandedTo(customer, alice, { name: CUSTOMER_NAME, agentName: AGENT.name, question: QUESTION });
    await chatOf(alice).getByTestId('agent-input').fill(ALICE_SAYS);
    await chatOf(alice).getByTestId('agent-send').click();
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === ALICE_SAYS), "Alice's message in the widget");

    await signIn(bruno, '/agent.html', { username: BRUNO.username, password: BRUNO.password });
    await setPresence(bruno, 'online');
    assert.equal(await bruno.getByTestId('agent-name').textContent(), BRUNO.name);
  });

  it('lists the colleagues with presence and load, without Alice, and the offline one cannot be chosen', async () => {
    await chatOf(alice).getByTestId('agent-transfer').click();
    await dialog(alice).waitFor();
    // Back to the queue is where it starts: the old way is one click away.
    assert.equal(await alice.getByTestId('agent-transfer-to-queue').isChecked(), true);
    assert.equal((await alice.getByTestId('agent-transfer-confirm').textContent()).trim(), 'Return to queue');
    await alice.getByTestId('agent-transfer-to-agent').check();
    await alice.getByTestId('agent-transfer-agents').waitFor();
    await until(async () => (await row(alice, brunoId).getAttribute('data-available')) === 'true', 'Bruno listed as available');

    const listed = await rows(alice);
    assert.ok(!listed.some((item) => item.id === aliceId), 'Alice is not offered herself');
    assert.deepEqual(listed.find((item) => item.id === brunoId), { id: brunoId, status: 'online', available: true, disabled: false });
    assert.deepEqual(listed.find((item) => item.id === chidiId), { id: chidiId, status: 'offline', available: false, disabled: true });
    // The load is what the server counts: open chats / capacity.
    const colleagues = (await rest('/api/agents', { token })).data;
    const brunoNow = colleagues.find((agent) => agent.agentId === brunoId);
    assert.equal(await row(alice, brunoId).getByTestId('agent-transfer-agent-load').textContent(), `${brunoNow.activeSessions}/${BRUNO.capacity}`);
    assert.equal(await row(alice, chidiId).getByTestId('agent-transfer-agent-load').textContent(), `0/${CHIDI.capacity}`);
    assert.equal(await row(alice, brunoId).getByTestId('agent-transfer-agent-name').textContent(), BRUNO.name);
    assert.equal(await row(alice, brunoId).getByTestId('agent-transfer-agent-status').textContent(), 'Online');
    assert.equal(await row(alice, chidiId).getByTestId('agent-transfer-agent-status').textContent(), 'Offline');
    // The offline one cannot be picked: a click changes nothing.
    await row(alice, chidiId).click({ force: true });
    assert.equal(await row(alice, chidiId).locator('input').isChecked(), false);
    // No priority or queue reason for a chat handed to a person.
    assert.equal(await alice.getByTestId('agent-transfer-priority').isVisible(), false);
    await screenshot(alice, 'agent-transfer-dialog');
  });

  it('shows the server\'s refusal in the dialog when the chosen agent went away meanwhile, and keeps the chat', async () => {
    await row(alice, brunoId).click();
    assert.equal((await alice.getByTestId('agent-transfer-confirm').textContent()).trim(), `Transfer to ${BRUNO.name}`);
    // Bruno steps away after Alice's list was read.
    await setPresence(bruno, 'away');
    await alice.getByTestId('agent-transfer-confirm').click();
    const error = alice.getByTestId('agent-transfer-error');
    await error.waitFor();
    assert.match(await error.textContent(), new RegExp(`${BRUNO.name} cannot take this chat now: they are not online or have no free slot`));
    assert.equal(await dialog(alice).isVisible(), true, 'the dialog stays open to choose again');
    // The list is read again: Bruno is away and cannot be chosen.
    await until(async () => (await row(alice, brunoId).getAttribute('data-status')) === 'away', 'Bruno shown as away');
    assert.equal(await row(alice, brunoId).locator('input').isDisabled(), true);
    assert.equal(await chatOf(alice).isVisible(), true, 'Alice still has the chat');
    await screenshot(alice, 'agent-transfer-refused');
  });

  it('hands the chat to Bruno by name: his desk has it with its history, Alice\'s has it no more', async () => {
    await setPresence(bruno, 'online');
    await until(async () => {
      await alice.getByTestId('agent-transfer-refresh').click();
      return (await row(alice, brunoId).getAttribute('data-available')) === 'true';
    }, 'Bruno available again after a refresh');
    await row(alice, brunoId).click();
    const before = await widgetMessages(customer);
    await alice.getByTestId('agent-transfer-confirm').click();

    await dialog(alice).waitFor({ state: 'hidden' });
    await chatOf(alice).waitFor({ state: 'detached' });
    assert.equal(await tabOf(alice).count(), 0, "the chat is gone from Alice's list");

    await chatOf(bruno).waitFor();
    await tabOf(bruno).waitFor();
    await until(async () => (await agentMessages(bruno, sessionId)).length >= before.length, "the history on Bruno's desk");
    const history = await agentMessages(bruno, sessionId);
    assertContiguous(history, assert, "Bruno's desk");
    assert.ok(history.some((m) => m.sender === 'customer' && m.text === QUESTION), "the customer's question");
    assert.ok(history.some((m) => m.sender === 'agent' && m.text === ALICE_SAYS), "Alice's answer");
    assert.deepEqual(history.slice(0, before.length).map((m) => [m.seq, m.text]), before.map((m) => [m.seq, m.text]));
    await screenshot(bruno, 'agent-transfer-received');

    await chatOf(bruno).getByTestId('agent-input').fill(BRUNO_SAYS);
    await chatOf(bruno).getByTestId('agent-send').click();
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'agent' && m.text === BRUNO_SAYS), "Bruno's answer in the widget");
    // Alice's reply is drawn as a colleague's, Bruno's own as his.
    const drawn = (text) => chatOf(bruno).locator('[data-testid=agent-message][data-sender=agent]').filter({ hasText: text });
    assert.equal(await drawn(ALICE_SAYS).evaluate((li) => li.classList.contains('mine')), false);
    assert.equal(await drawn(BRUNO_SAYS).evaluate((li) => li.classList.contains('mine')), true);
    const session = (await rest(`/api/sessions/${sessionId}`, { token })).data;
    assert.equal(session.status, 'assigned');
    assert.equal(session.assignedAgentId, brunoId);
  });

  it('sends the chat on to a team\'s queue, where the team\'s agent finds it', async () => {
    await chatOf(bruno).getByTestId('agent-transfer').click();
    await dialog(bruno).waitFor();
    await bruno.getByTestId('agent-transfer-to-team').check();
    const select = bruno.getByTestId('agent-transfer-team');
    await until(async () => (await select.locator('option').evaluateAll((options) => options.map((o) => o.value))).includes(teamId), 'the team in the list');
    await select.selectOption(teamId);
    assert.match(await select.locator(`option[value="${teamId}"]`).textContent(), new RegExp(`^${TEAM} · 0 of 1 online$`));
    assert.equal((await bruno.getByTestId('agent-transfer-confirm').textContent()).trim(), `Send to ${TEAM}`);
    await bruno.getByTestId('agent-transfer-reason').fill('Refund of a double charge');
    await screenshot(bruno, 'agent-transfer-team');
    await bruno.getByTestId('agent-transfer-confirm').click();
    await dialog(bruno).waitFor({ state: 'hidden' });
    await chatOf(bruno).waitFor({ state: 'detached' });

    const queued = alice.locator(`[data-testid=agent-queue-item][data-session-id="${sessionId}"]`);
    await queued.waitFor();
    assert.match(await queued.getByTestId('agent-queue-reason').textContent(), /Refund of a double charge/);
    const session = (await rest(`/api/sessions/${sessionId}`, { token })).data;
    assert.equal(session.status, 'waiting');
    assert.equal(session.teamId, teamId);

    // Done: Alice takes it and the customer ends the chat.
    await queued.getByTestId('agent-pickup').click();
    await chatOf(alice).waitFor();
    await customer.getByTestId('sb-menu-button').click();
    await customer.getByTestId('sb-end-chat').click();
    await customer.getByTestId('sb-end-confirm-yes').click();
    await chatOf(alice).getByTestId('agent-chat-ended').waitFor();
  });

  it('raised no dialog, no page error and no Content-Security-Policy violation', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, [], 'no dialog opened');
      assert.deepEqual(record.errors, [], 'no uncaught page error');
    }
    assert.deepEqual(cspViolations, []);
  });
});
