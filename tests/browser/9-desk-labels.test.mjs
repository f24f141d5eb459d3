// Labels on a chat, on the agent desk against the real server: an admin
// makes a label (POST /api/admin/labels) after the desk has loaded; the agent
// puts it on the open chat from the details column, where it shows as a chip
// in the label's colour; search finds the chat by it (GET /api/sessions?label=),
// a reload of the desk shows it again, and taking it off is stored too.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { AGENT, customerAndAgentPages, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import { adminToken, customerHandedTo, rest, setPresence, tag } from './desk.mjs';

const CUSTOMER_NAME = 'Lena Labels';

describe('labels on a chat in the agent desk', () => {
  const run = tag();
  const LABEL = { name: `Refund ${run}`, color: '#c2410c' };
  const OTHER = { name: `VIP ${run}`, color: '#0369a1' };

  let browser;
  let agent;
  let customer;
  let sessionId;
  let token;
  let cspViolations;
  const watched = [];

  const panel = () => agent.getByTestId('agent-labels');
  const chips = () => panel().getByTestId('agent-label-chip').evaluateAll((items) => items.map((item) => item.dataset.name));
  const chip = (name) => panel().locator(`[data-testid=agent-label-chip][data-name="${name}"]`);
  const option = (name) => panel().locator(`[data-testid=agent-label-option][data-name="${name}"]`);
  const search = async (name) => {
    const found = await rest(`/api/sessions?label=${encodeURIComponent(name)}&limit=200`, { token });
    assert.equal(found.status, 200, JSON.stringify(found.data));
    return found.data.sessions;
  };

  before(async () => {
    ({ browser, customer, agent } = await customerAndAgentPages());
    watched.push(watch(customer, 'customer'), watch(agent, 'agent'));
    cspViolations = await watchCsp(agent);
    token = await adminToken();
  });

  after(async () => {
    await browser?.close();
  });

  it('has the agent in a chat with no labels', async () => {
    await signIn(agent, '/agent.html', AGENT);
    await setPresence(agent, 'away');
    sessionId = await customerHandedTo(customer, agent, { name: CUSTOMER_NAME, agentName: AGENT.name, question: 'My refund is late' });
    await panel().getByTestId('agent-labels-none').waitFor();
    assert.deepEqual(await chips(), []);
  });

  it('puts a label an admin just made on the chat, shown as a chip in its colour, and search finds the chat by it', async () => {
    for (const label of [LABEL, OTHER]) {
      const created = await rest('/api/admin/labels', { method: 'POST', token, body: label });
      assert.equal(created.status, 201, JSON.stringify(created.data));
    }
    assert.deepEqual(await search(LABEL.name), [], 'no chat has the new label yet');

    // Opening the picker reads the labels again: the new ones are there.
    await panel().getByTestId('agent-labels-add').click();
    await option(LABEL.name).waitFor();
    assert.equal(await option(LABEL.name).getAttribute('aria-checked'), 'false');
    await screenshot(agent, 'agent-labels-picker');
    await option(LABEL.name).click();
    await chip(LABEL.name).waitFor();
    assert.equal(await option(LABEL.name).getAttribute('aria-checked'), 'true');
    assert.deepEqual(await chips(), [LABEL.name]);
    assert.equal(await chip(LABEL.name).locator('.label-dot').evaluate((node) => getComputedStyle(node).backgroundColor), 'rgb(194, 65, 12)');
    assert.equal(await chip(LABEL.name).textContent(), LABEL.name);
    await panel().getByTestId('agent-labels-add').click();
    await panel().getByTestId('agent-label-picker').waitFor({ state: 'detached' });
    await screenshot(agent, 'agent-labels');

    // Stored: the admin's search by label finds this chat, with its label.
    await until(async () => (await search(LABEL.name)).some((s) => s.sessionId === sessionId), 'the chat in a search by its label');
    const found = (await search(LABEL.name)).find((s) => s.sessionId === sessionId);
    assert.deepEqual(found.labels, [LABEL.name]);
    assert.deepEqual(await search(OTHER.name), [], 'only the label chosen was put on');
    const one = await rest(`/api/sessions/${sessionId}`, { token });
    assert.deepEqual(one.data.labels, [LABEL.name]);
  });

  it('shows the chip again after a reload of the desk', async () => {
    await agent.reload();
    await agent.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    await agent.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`).waitFor();
    await chip(LABEL.name).waitFor();
    assert.deepEqual(await chips(), [LABEL.name]);
    assert.equal(await chip(LABEL.name).locator('.label-dot').evaluate((node) => getComputedStyle(node).backgroundColor), 'rgb(194, 65, 12)');
  });

  it('adds a second label and takes the first off, and the server has exactly what the desk shows', async () => {
    await panel().getByTestId('agent-labels-add').click();
    await option(OTHER.name).click();
    await chip(OTHER.name).waitFor();
    assert.deepEqual(await chips(), [LABEL.name, OTHER.name]);

    await chip(LABEL.name).getByTestId('agent-label-remove').click();
    await chip(LABEL.name).waitFor({ state: 'detached' });
    assert.deepEqual(await chips(), [OTHER.name]);
    await until(async () => !(await search(LABEL.name)).some((s) => s.sessionId === sessionId), 'the chat out of the search by the removed label');
    assert.ok((await search(OTHER.name)).some((s) => s.sessionId === sessionId));
    assert.deepEqual((await rest(`/api/sessions/${sessionId}`, { token })).data.labels, [OTHER.name]);

    const chat = agent.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);
    await chat.getByTestId('agent-close').click();
    await agent.getByTestId('agent-close-confirm').click();
    await chat.getByTestId('agent-chat-ended').waitFor();
  });

  it('raised no dialog, no page error and no Content-Security-Policy violation', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, [], 'no dialog opened');
      assert.deepEqual(record.errors, [], 'no uncaught page error');
    }
    assert.deepEqual(cspViolations, []);
  });
});
