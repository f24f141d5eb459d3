// The LLM bot, on a server started with BOT=llm against the stand-in model
// of tests/standin (a real HTTP server speaking the OpenAI streaming API):
// the customer watches the answer being written, and the agent sees why the
// bot handed the chat over and what it did.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { AGENT, DESKTOP, launchBrowser, screenshot, until, watch, widgetMessages } from './helpers.mjs';

const LLM_BASE_URL = (process.env.LLM_BOT_BASE_URL || '').replace(/\/$/, '');

describe('the AI bot', () => {
  let browser;
  let customer;
  let agent;
  const records = [];

  before(async () => {
    assert.ok(LLM_BASE_URL, 'LLM_BOT_BASE_URL is not set: run the tests through scripts/browser-tests.sh');
    browser = await launchBrowser();
    for (const label of ['customer', 'agent']) {
      const context = await browser.newContext({ viewport: DESKTOP });
      context.setDefaultTimeout(15000);
      const page = await context.newPage();
      records.push(watch(page, label));
      if (label === 'customer') customer = page; else agent = page;
    }
  });

  after(async () => {
    await browser?.close();
  });

  async function customerSays(text) {
    await customer.getByTestId('sb-input').fill(text);
    await customer.getByTestId('sb-input').press('Enter');
  }

  it('shows a streamed answer growing in the widget, then the stored message once', async () => {
    await customer.goto(`${LLM_BASE_URL}/`);
    await customer.getByTestId('sb-launcher').click();
    await customer.getByTestId('sb-name').fill('Ann Example');
    await customer.getByTestId('sb-start').click();
    await customer.locator('[data-testid=sb-message][data-sender=bot]').first().waitFor();

    await customerSays('tell me a long story');
    const draft = customer.getByTestId('sb-draft');
    const lengths = [];
    // The stand-in writes about forty words, one every 150 ms: read the bubble as it grows.
    await until(async () => {
      if (await draft.count()) {
        const text = (await draft.locator('.sb-bubble').textContent()) || '';
        if (!lengths.length || text.length !== lengths[lengths.length - 1]) lengths.push(text.length);
      }
      return lengths.length >= 4;
    }, 'the draft to grow four times');
    assert.ok(lengths.every((length, i) => i === 0 || length > lengths[i - 1]), `the draft only grows: ${lengths}`);
    await screenshot(customer, 'ai-bot-1-widget-streaming');

    await draft.waitFor({ state: 'detached', timeout: 20000 });
    const messages = await widgetMessages(customer);
    const answers = messages.filter((m) => m.sender === 'bot' && m.text.split(' ').length > 30);
    assert.equal(answers.length, 1, 'the stored answer is shown once');
    assert.ok(answers[0].seq, 'and it is the stored message');
    assert.ok(answers[0].text.length >= lengths[lengths.length - 1], 'with all the text the draft showed');
  });

  it('shows the agent the reason the model gave for handing over, and what the bot did', async () => {
    await agent.goto(`${LLM_BASE_URL}/agent.html`);
    await agent.getByTestId('login-username').fill(AGENT.username);
    await agent.getByTestId('login-password').fill(AGENT.password);
    await agent.getByTestId('login-submit').click();
    await agent.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    await agent.locator('[data-testid=agent-status-toggle][data-status=online]').waitFor();
    // Away: the chat waits on the board instead of being assigned at once.
    await agent.getByTestId('agent-status-toggle').click();
    await agent.locator('[data-testid=agent-status-toggle][data-status=away]').waitFor();

    await customerSays('I would like to talk to a human please');
    await customer.getByTestId('sb-queue').waitFor();
    const sessionId = await customer.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('switchboard:v1:'));
      return JSON.parse(localStorage.getItem(key)).sessionId;
    });
    const item = agent.locator(`[data-testid=agent-queue-item][data-session-id="${sessionId}"]`);
    await item.waitFor();
    const reason = item.getByTestId('agent-queue-reason');
    assert.equal(await reason.getAttribute('data-reason'), 'customer asked for a person');
    assert.match(await reason.textContent(), /customer asked for a person/);
    await screenshot(agent, 'ai-bot-2-desk-handoff-reason');

    await item.getByTestId('agent-pickup').click();
    const chat = agent.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);
    await chat.waitFor();
    const details = chat.getByTestId('agent-bot-details');
    await until(async () => (await details.allTextContents()).some((text) => /used transfer_to_human/.test(text)),
      'the bot\'s tool call under its message');
    await screenshot(agent, 'ai-bot-3-desk-bot-details');
    const errors = records.flatMap((record) => [...record.dialogs, ...record.errors]);
    assert.deepEqual(errors, []);
  });
});
