// Canned replies on the agent desk against the real server: the replies are
// the rows admins keep (POST /api/admin/canned-replies), read again when the
// menu opens, so one added after the desk loaded is there without a reload.
// Typing `/` at the start of a reply searches them by shortcut and title;
// the keys choose one, Enter puts it in the composer with the customer's and
// the agent's names filled in, and the customer's widget shows it as sent.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  AGENT, agentMessages, customerAndAgentPages, screenshot, signIn, until, watch, watchCsp, widgetMessages,
} from './helpers.mjs';
import { adminToken, customerHandedTo, rest, setPresence, tag } from './desk.mjs';

const CUSTOMER_NAME = 'Dana Canned';

describe('canned replies found with / in the agent desk', () => {
  const run = tag();
  // Two replies only this run has: their shortcuts share the prefix `c<run>-`.
  const HELLO = { shortcut: `c${run}-hello`, title: `Warm hello ${run}`, content: 'Hello {name}, lovely to hear from you!' };
  const REFUND = {
    shortcut: `c${run}-refund`,
    title: `Refund approved ${run}`,
    content: 'Good news, {name}: your refund is approved and on its way. {agent} from the returns desk',
  };
  const filled = (text) => text.replaceAll('{name}', CUSTOMER_NAME.split(' ')[0]).replaceAll('{agent}', AGENT.name.split(' ')[0]);

  let browser;
  let customer;
  let agent;
  let sessionId;
  let cspViolations;
  const watched = [];

  const chat = () => agent.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);
  const input = () => chat().getByTestId('agent-input');
  const menu = () => chat().getByTestId('agent-canned-menu');
  const shown = () => menu().getByTestId('agent-canned-item').evaluateAll((items) => items.map((item) => ({
    shortcut: item.dataset.shortcut, selected: item.getAttribute('aria-selected') === 'true',
  })));
  const shortcuts = async () => (await shown()).map((item) => item.shortcut);

  before(async () => {
    ({ browser, customer, agent } = await customerAndAgentPages());
    watched.push(watch(customer, 'customer'), watch(agent, 'agent'));
    cspViolations = await watchCsp(agent);
  });

  after(async () => {
    await browser?.close();
  });

  it('has the agent in a chat with a customer', async () => {
    await signIn(agent, '/agent.html', AGENT);
    await setPresence(agent, 'away');
    sessionId = await customerHandedTo(customer, agent, { name: CUSTOMER_NAME, agentName: AGENT.name, question: 'Where is my refund?' });
  });

  it('finds replies an admin added after the desk loaded by typing / and part of a shortcut or a title', async () => {
    // Added now: the desk read the list when it started, without them.
    const token = await adminToken();
    for (const reply of [REFUND, HELLO]) {
      const created = await rest('/api/admin/canned-replies', { method: 'POST', token, body: reply });
      assert.equal(created.status, 201, JSON.stringify(created.data));
    }

    // `/` and the shortcuts' shared start: exactly the two, by shortcut, the first ready for Enter.
    await input().click();
    await input().pressSequentially(`/c${run}`);
    await menu().waitFor();
    await until(async () => (await shortcuts()).length === 2, 'the two new replies in the menu');
    assert.deepEqual(await shown(), [{ shortcut: HELLO.shortcut, selected: true }, { shortcut: REFUND.shortcut, selected: false }]);
    const refundItem = menu().locator(`[data-testid=agent-canned-item][data-shortcut="${REFUND.shortcut}"]`);
    assert.match(await refundItem.textContent(), new RegExp(`/${REFUND.shortcut}`));
    assert.match(await refundItem.textContent(), new RegExp(REFUND.title));
    assert.match(await refundItem.textContent(), new RegExp(filled(REFUND.content).slice(0, 40)), 'the preview is filled in');
    await screenshot(agent, 'agent-canned-slash');

    // A part from the middle of a shortcut finds it too.
    await input().fill('');
    await input().pressSequentially(`/${run}-ref`);
    await until(async () => JSON.stringify(await shortcuts()) === JSON.stringify([REFUND.shortcut]), 'the reply whose shortcut contains the text');

    // A word of the title finds it: "approved" is in the title, not in the shortcut.
    await input().fill('');
    await input().pressSequentially('/approved');
    await until(async () => (await shortcuts()).includes(REFUND.shortcut), 'the reply found by its title');
    assert.ok(!(await shortcuts()).includes(HELLO.shortcut), 'a reply that matches neither shortcut nor title is left out');

    // Nothing matches: the menu says so, and Escape closes it, leaving the text as typed.
    await input().fill('');
    await input().pressSequentially(`/nothing${run}`);
    await menu().getByTestId('agent-canned-empty').waitFor();
    await input().press('Escape');
    await menu().waitFor({ state: 'hidden' });
    assert.equal(await input().inputValue(), `/nothing${run}`);

    // No longer a `/` at the start: no menu.
    await input().fill('');
    await input().pressSequentially('Thanks /c');
    assert.equal(await menu().isVisible(), false, 'a slash inside a sentence opens nothing');
    await input().fill('');
  });

  it('inserts the chosen reply with the names filled in, and the customer gets it', async () => {
    await input().pressSequentially(`/c${run}`);
    await until(async () => (await shortcuts()).length === 2, 'the two replies');
    // Down to the second, round to the first and back again.
    await input().press('ArrowDown');
    assert.deepEqual((await shown()).map((item) => item.selected), [false, true]);
    await input().press('ArrowDown');
    assert.deepEqual((await shown()).map((item) => item.selected), [true, false]);
    await input().press('ArrowUp');
    assert.deepEqual((await shown()).map((item) => item.selected), [false, true]);
    await input().press('Enter');
    await menu().waitFor({ state: 'hidden' });
    const text = filled(REFUND.content);
    assert.equal(await input().inputValue(), text, 'the "/…" typed is replaced by the filled reply, not sent');
    assert.ok(text.includes('Dana') && text.includes('Alice'));
    assert.ok(!(await agentMessages(agent, sessionId)).some((m) => m.text.startsWith('/')), 'nothing was sent yet');

    await input().press('Enter');
    await until(async () => (await agentMessages(agent, sessionId)).some((m) => m.sender === 'agent' && m.text === text && m.seq),
      'the reply to be acknowledged');
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'agent' && m.text === text),
      "the filled reply in the customer's widget");
  });

  it('inserts a reply with a click, and the Canned replies button lists the new replies too', async () => {
    await input().pressSequentially(`/c${run}-h`);
    await until(async () => JSON.stringify(await shortcuts()) === JSON.stringify([HELLO.shortcut]), 'the one reply');
    await menu().getByTestId('agent-canned-item').click();
    await menu().waitFor({ state: 'hidden' });
    assert.equal(await input().inputValue(), filled(HELLO.content));
    await input().fill('');

    await chat().getByTestId('agent-canned').click();
    await menu().waitFor();
    await until(async () => {
      const all = await shortcuts();
      return all.includes(HELLO.shortcut) && all.includes(REFUND.shortcut);
    }, 'the new replies in the full list');
    // A click elsewhere closes it.
    await chat().getByTestId('agent-chat-title').click();
    await menu().waitFor({ state: 'hidden' });

    await chat().getByTestId('agent-close').click();
    await agent.getByTestId('agent-close-confirm').click();
    await chat().getByTestId('agent-chat-ended').waitFor();
  });

  it('raised no dialog, no page error and no Content-Security-Policy violation', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, [], 'no dialog opened');
      assert.deepEqual(record.errors, [], 'no uncaught page error');
    }
    assert.deepEqual(cspViolations, []);
  });
});
