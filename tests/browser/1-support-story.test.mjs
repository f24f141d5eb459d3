// The whole support story in two browsers: a customer on the demo shop and an
// agent on the agent desk. Runs in order; each step builds on the last.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  AGENT, BASE_URL, DESKTOP, PHONE, agentMessages, assertContiguous, launchBrowser, screenshot, signIn, until,
  watch, widgetMessages,
} from './helpers.mjs';

const SCRIPT_PAYLOAD = '<script>alert(1)</script>';
const IMG_PAYLOAD = '<img src=x onerror=alert(1)>';

describe('a customer and an agent complete a support chat', () => {
  let browser;
  let customerContext;
  let agentContext;
  let customer;
  let agent;
  const watched = [];
  let sessionId;
  const agentSockets = [];
  const customerSent = [];
  const agentSent = [];

  const widgetCount = async (page = customer) => (await widgetMessages(page)).length;
  const agentChat = () => agent.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);

  async function customerSays(text) {
    const before = (await widgetMessages(customer)).filter((m) => m.sender === 'customer').length;
    await customer.getByTestId('sb-input').fill(text);
    await customer.getByTestId('sb-input').press('Enter');
    customerSent.push(text);
    await until(async () => {
      const mine = (await widgetMessages(customer)).filter((m) => m.sender === 'customer');
      return mine.length === before + 1 && mine.every((m) => m.seq);
    }, `the customer's message "${text}" to be acknowledged`);
  }

  async function agentSays(text) {
    const chat = agentChat();
    await chat.getByTestId('agent-input').fill(text);
    await chat.getByTestId('agent-send').click();
    agentSent.push(text);
    await until(async () => (await agentMessages(agent, sessionId)).some((m) => m.sender === 'agent' && m.text === text && m.seq),
      `the agent's message "${text}" to be acknowledged`);
  }

  before(async () => {
    browser = await launchBrowser();
    customerContext = await browser.newContext({ viewport: DESKTOP });
    agentContext = await browser.newContext({ viewport: DESKTOP });
    customerContext.setDefaultTimeout(10000);
    agentContext.setDefaultTimeout(10000);
    customer = await customerContext.newPage();
    agent = await agentContext.newPage();
    watched.push(watch(customer, 'customer'), watch(agent, 'agent'));
    // The agent desk's sockets pass through untouched; a test can cut one to see the desk recover.
    await agent.routeWebSocket(/\/ws\/agent/, (ws) => {
      ws.connectToServer();
      agentSockets.push(ws);
    });
  });

  after(async () => {
    await browser?.close();
  });

  it('lets the agent sign in and step away from automatic assignments', async () => {
    await signIn(agent, '/agent.html', AGENT);
    await agent.getByTestId('agent-app').waitFor();
    await agent.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    assert.equal(await agent.getByTestId('agent-name').textContent(), AGENT.name);
    await agent.locator('[data-testid=agent-status-toggle][data-status=online]').waitFor();
    await agent.getByTestId('agent-status-toggle').click();
    await agent.locator('[data-testid=agent-status-toggle][data-status=away]').waitFor();
    await agent.getByTestId('agent-queue-empty').waitFor();
  });

  it('greets the customer with the bot, which answers a question', async () => {
    await customer.goto(`${BASE_URL}/`);
    await customer.getByTestId('sb-launcher').click();
    await customer.getByTestId('sb-name').fill('Ann Example');
    await customer.getByTestId('sb-start').click();
    const greeting = customer.locator('[data-testid=sb-message][data-sender=bot]').first();
    await greeting.waitFor();
    assert.match(await greeting.getByTestId('sb-message-text').textContent(), /Hi Ann Example!/);
    assert.equal(await greeting.getByTestId('sb-message-sender').textContent(), 'Switchboard Assistant');
    sessionId = await customer.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('switchboard:v1:'));
      return JSON.parse(localStorage.getItem(key)).sessionId;
    });
    assert.match(sessionId, /^[0-9a-f-]{36}$/);

    await customerSays('How long does shipping take?');
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'bot' && /ship within 1 business day/.test(m.text)),
      'the bot to answer the shipping question');
  });

  it('hands the customer to a person with the talk-to-a-person button and shows the queue position', async () => {
    await customer.getByTestId('sb-talk-to-person').click();
    await customer.getByTestId('sb-queue').waitFor();
    assert.equal(await customer.getByTestId('sb-queue-position').getAttribute('data-position'), '1');
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'system' && /number 1 in the queue/.test(m.text)),
      'the system message about the queue');
    assert.equal(await customer.getByTestId('sb-talk-to-person').isVisible(), false);
  });

  it('shows the waiting chat in the agent queue with priority, waiting time and preview, and lets the agent pick it up', async () => {
    const item = agent.locator(`[data-testid=agent-queue-item][data-session-id="${sessionId}"]`);
    await item.waitFor();
    assert.equal(await item.getByTestId('agent-queue-name').textContent(), 'Ann Example');
    assert.equal(await item.getByTestId('agent-queue-priority').textContent(), 'normal');
    assert.equal(await item.getByTestId('agent-queue-preview').textContent(), 'How long does shipping take?');
    assert.match(await item.locator('[data-since]').textContent(), /^\d+s$/);

    await item.getByTestId('agent-pickup').click();
    await agentChat().waitFor();
    await item.waitFor({ state: 'detached' });

    // The page the customer wrote from: the link reads where it really leads, and the
    // title the customer's browser reported (which anyone can set) is plain text beside it.
    const shop = new URL(`${BASE_URL}/`);
    const pageLink = agent.getByTestId('agent-detail-page-link');
    assert.equal(await pageLink.textContent(), `${shop.host}${shop.pathname}`);
    assert.equal(await pageLink.getAttribute('href'), shop.href);
    const pageTitle = agent.getByTestId('agent-detail-page-title');
    assert.equal(await pageTitle.textContent(), await customer.title());
    assert.equal(await pageTitle.evaluate((node) => node.closest('a')), null, 'the title is not a link');

    // The customer learns who is helping them.
    await until(async () => (await customer.getByTestId('sb-agent-name').textContent().catch(() => '')) === AGENT.name,
      "the agent's name in the widget header");
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'system' && m.text === `${AGENT.name} joined the chat.`),
      'the "joined the chat" message in the widget');

    // The agent gets the whole history, the same as the customer sees.
    const customerView = await widgetMessages(customer);
    await until(async () => (await agentMessages(agent, sessionId)).length === customerView.length, 'the whole history on the agent desk');
    const agentView = await agentMessages(agent, sessionId);
    assertContiguous(agentView, assert, 'agent desk');
    assert.deepEqual(agentView.map((m) => [m.seq, m.sender, m.text]), customerView.map((m) => [m.seq, m.sender, m.text]));
  });

  it('carries messages both ways with typing indicators and read receipts', async () => {
    // The agent types: the customer sees it.
    const chat = agentChat();
    await chat.getByTestId('agent-input').pressSequentially('Hi Ann', { delay: 10 });
    await customer.locator('[data-testid=sb-typing]:not([hidden])').waitFor();
    assert.match(await customer.getByTestId('sb-typing').textContent(), new RegExp(`${AGENT.name} is typing`));
    await chat.getByTestId('agent-input').fill('');
    await agentSays("Hi Ann, I'm Alice. Let me check your parcel.");
    await until(async () => (await widgetMessages(customer)).some((m) => m.sender === 'agent' && m.text === "Hi Ann, I'm Alice. Let me check your parcel."),
      "the agent's message in the widget");
    await customer.locator('[data-testid=sb-typing][hidden]').waitFor({ state: 'attached' });

    // The customer types: the agent sees it.
    await customer.getByTestId('sb-input').pressSequentially('Thank', { delay: 10 });
    await chat.locator('[data-testid=agent-typing]:not([hidden])').waitFor();
    assert.match(await chat.getByTestId('agent-typing').textContent(), /Ann Example is typing/);
    await customer.getByTestId('sb-input').fill('');
    await customerSays('Thanks! It was order 1042.');
    await until(async () => (await agentMessages(agent, sessionId)).some((m) => m.sender === 'customer' && m.text === 'Thanks! It was order 1042.'),
      "the customer's message on the agent desk");

    // The agent has the chat open, so the customer's messages show as read.
    await until(async () => (await widgetMessages(customer)).filter((m) => m.sender === 'customer').at(-1).status === 'read',
      "the read tick on the customer's latest message");
    // The widget is open and visible, so the agent's messages show as read too.
    await until(async () => (await agentMessages(agent, sessionId)).filter((m) => m.sender === 'agent').at(-1).status === 'read',
      "the read tick on the agent's latest message");
  });

  it('reconnects the agent desk by itself, re-joins, and shows nothing twice', async () => {
    const before = await agentMessages(agent, sessionId);
    const sockets = agentSockets.length;
    await agentSockets.at(-1).close({ code: 1012, reason: 'the server is restarting' });
    await customerSays('Are you still there?');
    await until(() => agentSockets.length > sockets, 'a new agent socket');
    await agent.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    await until(async () => (await agentMessages(agent, sessionId)).some((m) => m.text === 'Are you still there?'),
      'the message sent while the agent was away');
    const after = await agentMessages(agent, sessionId);
    assertContiguous(after, assert, 'agent desk after reconnecting');
    assert.deepEqual(after.slice(0, before.length).map((m) => m.id), before.map((m) => m.id));
    assert.equal(await agent.getByTestId('agent-chat-tab').count(), 1, 'the chat is listed once');
    assert.equal(await agent.getByTestId('agent-status-toggle').getAttribute('data-status'), 'away', 'still away after re-joining');

    // A reload of the desk keeps the sign-in (sessionStorage) and brings the chat back whole.
    await agent.reload();
    await agent.locator('[data-testid=agent-connection][data-state=open]').waitFor();
    await agentChat().waitFor();
    await until(async () => (await agentMessages(agent, sessionId)).length === after.length, 'the history after reloading the desk');
    assert.deepEqual((await agentMessages(agent, sessionId)).map((m) => m.id), after.map((m) => m.id));
    assert.equal(await agent.getByTestId('agent-chat-tab').count(), 1, 'the chat is listed once after the reload');
    await agent.locator('[data-testid=agent-status-toggle][data-status=away]').waitFor();
    assert.equal(await agent.getByTestId('toast').count(), 0, 'a restored chat is not announced as new');

    // A canned reply goes in the composer to be edited, then sent.
    await agentChat().getByTestId('agent-canned').click();
    await agentChat().getByTestId('agent-canned-menu').waitFor();
    await agentChat().getByTestId('agent-canned-item').filter({ hasText: 'One moment' }).click();
    const canned = await agentChat().getByTestId('agent-input').inputValue();
    assert.equal(canned, 'Let me look into that for you. It will only take a moment.');
    await agentSays(canned);
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === canned), 'the canned reply in the widget');
  });

  it('renders script and image payloads as plain text on both sides and runs nothing', async () => {
    await customerSays(SCRIPT_PAYLOAD);
    await customerSays(IMG_PAYLOAD);
    await agentSays(`You wrote ${IMG_PAYLOAD} and ${SCRIPT_PAYLOAD}`);

    await until(async () => {
      const texts = (await agentMessages(agent, sessionId)).map((m) => m.text);
      return texts.includes(SCRIPT_PAYLOAD) && texts.includes(IMG_PAYLOAD);
    }, 'both payloads on the agent desk');
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === `You wrote ${IMG_PAYLOAD} and ${SCRIPT_PAYLOAD}`),
      "the agent's payload in the widget");

    for (const [page, list] of [[customer, '[data-testid=sb-messages]'], [agent, '[data-testid=agent-messages]']]) {
      assert.equal(await page.locator(`${list} img[src="x"]`).count(), 0, 'no <img src=x> element in the message list');
      assert.equal(await page.locator(`${list} script`).count(), 0, 'no <script> element in the message list');
    }
    const widgetTexts = (await widgetMessages(customer)).map((m) => m.text);
    assert.ok(widgetTexts.includes(SCRIPT_PAYLOAD) && widgetTexts.includes(IMG_PAYLOAD), 'the widget shows the payloads literally');
    for (const record of watched) assert.deepEqual(record.dialogs, [], 'no dialog opened');
  });

  it('keeps every message exactly once across a reload of the customer page', async () => {
    const beforeReload = await widgetMessages(customer);
    assertContiguous(beforeReload, assert, 'widget before the reload');

    await customer.reload();
    // The panel was open: it opens again and resumes the session from the start.
    await customer.getByTestId('sb-panel').waitFor();
    await until(async () => (await widgetCount()) === beforeReload.length, 'the history after the reload');
    const afterReload = await widgetMessages(customer);
    assertContiguous(afterReload, assert, 'widget after the reload');
    assert.deepEqual(afterReload.map((m) => [m.seq, m.id, m.text]), beforeReload.map((m) => [m.seq, m.id, m.text]));
    assert.equal(await customer.getByTestId('sb-agent-name').textContent(), AGENT.name);

    // While the customer's page is gone, the agent writes; when it comes back, the message is there once.
    await customer.close();
    await agentSays('Your parcel left our warehouse this morning.');
    customer = await customerContext.newPage();
    watched.push(watch(customer, 'customer (reopened)'));
    await customer.goto(`${BASE_URL}/`);
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === 'Your parcel left our warehouse this morning.'),
      'the message sent while the page was closed');

    // Both keep chatting after the reload.
    await customerSays('Great, thank you!');
    await agentSays('You are welcome. Anything else?');
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === 'You are welcome. Anything else?'), 'the reply after the reload');
    await until(async () => (await agentMessages(agent, sessionId)).some((m) => m.text === 'Great, thank you!'), 'the message after the reload');

    const finalWidget = await widgetMessages(customer);
    const finalAgent = await agentMessages(agent, sessionId);
    assertContiguous(finalWidget, assert, 'widget at the end');
    assertContiguous(finalAgent, assert, 'agent desk at the end');
    assert.deepEqual(finalAgent.map((m) => [m.seq, m.text]), finalWidget.map((m) => [m.seq, m.text]));
    for (const text of customerSent) {
      assert.equal(finalWidget.filter((m) => m.sender === 'customer' && m.text === text).length, 1, `"${text}" once in the widget`);
      assert.equal(finalAgent.filter((m) => m.sender === 'customer' && m.text === text).length, 1, `"${text}" once on the agent desk`);
    }
    for (const text of agentSent) {
      assert.equal(finalWidget.filter((m) => m.sender === 'agent' && m.text === text).length, 1, `"${text}" once in the widget`);
      assert.equal(finalAgent.filter((m) => m.sender === 'agent' && m.text === text).length, 1, `"${text}" once on the agent desk`);
    }
  });

  it('sends a photo from the widget with a preview, shown on both sides, or says plainly that uploads are unavailable', async () => {
    // A small PNG drawn by the browser itself.
    const png = await customer.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 200;
      const g = canvas.getContext('2d');
      const gradient = g.createLinearGradient(0, 0, 320, 200);
      gradient.addColorStop(0, '#f59e0b');
      gradient.addColorStop(1, '#b45309');
      g.fillStyle = gradient;
      g.fillRect(0, 0, 320, 200);
      g.fillStyle = '#fff7ed';
      g.fillRect(70, 50, 180, 110);
      g.strokeStyle = '#7c2d12';
      g.lineWidth = 6;
      g.beginPath();
      g.moveTo(70, 50); g.lineTo(160, 110); g.lineTo(250, 50);
      g.stroke();
      return canvas.toDataURL('image/png').split(',')[1];
    });
    await customer.getByTestId('sb-file').setInputFiles({ name: 'parcel.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
    await customer.getByTestId('sb-attachment-preview').waitFor();
    assert.equal(await customer.getByTestId('sb-attachment-name').textContent(), 'parcel.png');
    const text = 'Here is a photo of the box.';
    await customer.getByTestId('sb-input').fill(text);
    await customer.getByTestId('sb-send').click();
    customerSent.push(text);
    await until(async () => (await widgetMessages(customer)).some((m) => m.text === text && m.seq), 'the message with the photo');
    const loaded = (page, selector) => page.locator(selector).first().evaluate((img) => img.complete && img.naturalWidth === 320);
    await until(() => loaded(customer, '[data-testid=sb-messages] [data-testid=sb-attachment] img'), 'the photo to load in the widget');
    await until(() => loaded(agent, `[data-testid=agent-chat][data-session-id="${sessionId}"] [data-testid=agent-attachment] img`), 'the photo on the agent desk');
    assert.equal(await customer.locator('[data-testid=sb-messages] [data-testid=sb-attachment] img').first().getAttribute('alt'), 'parcel.png');
    await agentSays('Thanks, I can see the damage. A replacement is on its way today.');
    await until(async () => (await widgetMessages(customer)).some((m) => /replacement is on its way/.test(m.text)), 'the reply to the photo');
  });

  it('takes screenshots of the shop with the widget mid-chat and of the agent desk', async () => {
    await customer.getByTestId('sb-input').fill('');
    await screenshot(customer, 'demo-desktop');
    await screenshot(agent, 'agent-desktop');
    await customer.setViewportSize(PHONE);
    await agent.setViewportSize(PHONE);
    await customer.getByTestId('sb-panel').waitFor();
    await screenshot(customer, 'demo-phone');
    await screenshot(agent, 'agent-phone');
    await agent.getByTestId('agent-back').click();
    await screenshot(agent, 'agent-phone-list');
    await agent.locator(`[data-testid=agent-chat-tab][data-session-id="${sessionId}"]`).click();
    await customer.setViewportSize(DESKTOP);
    await agent.setViewportSize(DESKTOP);
  });

  it('closes the chat from the agent desk, and the customer can rate it', async () => {
    const chat = agentChat();
    await chat.getByTestId('agent-close').click();
    await agent.getByTestId('agent-close-dialog').waitFor();
    await agent.getByTestId('agent-close-notes').fill('Parcel tracked; it arrives tomorrow.');
    await agent.getByTestId('agent-close-confirm').click();
    await chat.getByTestId('agent-chat-ended').waitFor();
    assert.match(await chat.getByTestId('agent-chat-ended').textContent(), /resolved/);
    assert.equal(await chat.getByTestId('agent-input').isDisabled(), true);

    await customer.getByTestId('sb-ended').waitFor();
    assert.match(await customer.getByTestId('sb-ended-text').textContent(), /resolved/);
    assert.equal(await customer.getByTestId('sb-composer').isVisible(), false);
    await customer.getByTestId('sb-rating-5').click();
    await customer.getByTestId('sb-rating-comment').fill('Quick and friendly.');
    await customer.getByTestId('sb-rating-submit').click();
    // Rating may not exist on every server version; either way the widget answers calmly.
    await until(async () => /Thanks for your feedback|not available right now/.test(await customer.getByTestId('sb-rating-status').textContent()),
      'an answer to the rating');
    await screenshot(customer, 'demo-desktop-ended');
  });

  it('hands off when a customer asks for a human, assigns an online agent automatically, and lets the customer end the chat', async () => {
    await agent.getByTestId('agent-status-toggle').click();
    await agent.locator('[data-testid=agent-status-toggle][data-status=online]').waitFor();

    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    const bob = await context.newPage();
    const record = watch(bob, 'second customer');
    await bob.goto(`${BASE_URL}/`);
    await bob.getByTestId('sb-launcher').click();
    await bob.getByTestId('sb-name').fill('Bob Rivers');
    await bob.getByTestId('sb-start').click();
    await bob.locator('[data-testid=sb-message][data-sender=bot]').first().waitFor();
    await bob.getByTestId('sb-input').fill('I want to talk to a human');
    await bob.getByTestId('sb-input').press('Enter');

    // No queue for him: the agent is online with room, so he is assigned at once.
    await until(async () => (await bob.getByTestId('sb-agent-name').textContent().catch(() => '')) === AGENT.name, 'automatic assignment');
    const tab = agent.locator('[data-testid=agent-chat-tab]').filter({ hasText: 'Bob Rivers' });
    await tab.waitFor();
    const bobSession = await tab.getAttribute('data-session-id');
    await until(async () => (await agentMessages(agent, bobSession)).some((m) => m.text === 'I want to talk to a human'), 'the history of the new chat');

    // The agent is still looking at Ann's closed chat: Bob's new message counts as unread.
    assert.equal(await agentChat().isVisible(), true);
    await bob.getByTestId('sb-input').fill('Hello?');
    await bob.getByTestId('sb-input').press('Enter');
    await until(async () => (await tab.getByTestId('agent-unread').textContent()) === '1', "the unread count on Bob's tab");
    assert.match(await agent.title(), /^\(1\) /);
    assert.equal(await bob.getByTestId('sb-typing').isVisible(), false);

    // Dismissing the closed chat opens Bob's, which clears the count.
    await agentChat().getByTestId('agent-dismiss').click();
    await agentChat().waitFor({ state: 'detached' });
    await agent.locator(`[data-testid=agent-chat][data-session-id="${bobSession}"]`).waitFor();
    await until(async () => (await tab.getByTestId('agent-unread').isHidden()), 'the unread count to clear');
    assert.doesNotMatch(await agent.title(), /^\(/);
    assert.ok((await agentMessages(agent, bobSession)).some((m) => m.text === 'Hello?'));

    // The agent returns the chat to the queue at high priority; it is not handed straight back.
    const bobChat = agent.locator(`[data-testid=agent-chat][data-session-id="${bobSession}"]`);
    await bobChat.getByTestId('agent-transfer').click();
    await agent.getByTestId('agent-transfer-dialog').waitFor();
    await agent.getByTestId('agent-transfer-priority').selectOption('high');
    await agent.getByTestId('agent-transfer-reason').fill('Needs the billing team');
    await agent.getByTestId('agent-transfer-confirm').click();
    await bobChat.waitFor({ state: 'detached' });
    await bob.getByTestId('sb-queue').waitFor();
    await until(async () => (await widgetMessages(bob)).some((m) => m.sender === 'system' && /being transferred/.test(m.text)),
      'the transfer message in the widget');
    const queued = agent.locator(`[data-testid=agent-queue-item][data-session-id="${bobSession}"]`);
    await queued.waitFor();
    assert.equal(await queued.getByTestId('agent-queue-priority').textContent(), 'high');

    // Picking it up again brings the whole history back.
    await queued.getByTestId('agent-pickup').click();
    await bobChat.waitFor();
    await until(async () => (await agentMessages(agent, bobSession)).length === (await widgetMessages(bob)).length, 'the history after the pickup');
    assertContiguous(await agentMessages(agent, bobSession), assert, "Bob's chat on the agent desk");
    await bob.locator('[data-testid=sb-queue]').waitFor({ state: 'hidden' });

    await bob.getByTestId('sb-menu-button').click();
    await bob.getByTestId('sb-end-chat').click();
    await bob.getByTestId('sb-end-confirm-yes').click();
    await bob.getByTestId('sb-ended').waitFor();
    assert.match(await bob.getByTestId('sb-ended-text').textContent(), /You ended this conversation/);
    await agent.locator(`[data-testid=agent-chat][data-session-id="${bobSession}"] [data-testid=agent-chat-ended]`).waitFor();
    assert.match(await agent.locator(`[data-testid=agent-chat][data-session-id="${bobSession}"] [data-testid=agent-chat-ended]`).textContent(), /customer ended/);

    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    await context.close();
  });

  it('raised no dialog and no page error anywhere', () => {
    for (const record of watched) {
      assert.deepEqual(record.dialogs, [], 'no dialog opened');
      assert.deepEqual(record.errors, [], 'no uncaught page error');
    }
  });
});
