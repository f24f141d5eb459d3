// Transcripts by email from the pages, against the real server and a real
// SMTP receiver (smtp-server, on the port scripts/browser-tests.sh gave the
// server as SMTP_URL): the agent emails a chat's transcript from the desk,
// and the customer asks for one in the widget once the chat has ended. Each
// arrives, from MAIL_FROM, with the company in its subject; what the email
// holds (every message in order, never a private note, HTML escaped) is
// tests/api/mail.rs's part.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SMTPServer } from 'smtp-server';

import { ADMIN, AGENT, DESKTOP, launchBrowser, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import { adminToken, customerHandedTo, rest, setPresence, tag } from './desk.mjs';

const SINK_PORT = Number(process.env.MAIL_SINK_PORT);

/** An SMTP receiver that keeps every message: {from, to, raw}. */
function startSink(port) {
  const received = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom && session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({ server, received }));
  });
}

describe('emailing a transcript from the desk and from the widget', () => {
  const run = tag();
  const CUSTOMER_NAME = `Erin Transcript ${run}`;
  const QUESTION = `Where is my order ${run}?`;
  const AGENT_ADDRESS = `agent-copy-${run}@example.com`;
  const CUSTOMER_ADDRESS = `erin-${run}@example.com`;

  let browser;
  let customer;
  let agent;
  let sink;
  let sessionId;
  let cspViolations;
  const watched = [];

  const chatOf = (page) => page.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`);
  const mailTo = (address) => sink.received.find((mail) => mail.to.includes(address));

  before(async () => {
    assert.ok(SINK_PORT, 'MAIL_SINK_PORT is set by scripts/browser-tests.sh');
    sink = await startSink(SINK_PORT);
    browser = await launchBrowser();
    const contexts = await Promise.all([0, 1].map(() => browser.newContext({ viewport: DESKTOP })));
    contexts.forEach((context) => context.setDefaultTimeout(10000));
    [customer, agent] = await Promise.all(contexts.map((context) => context.newPage()));
    watched.push(watch(customer, 'customer'), watch(agent, 'agent'));
    cspViolations = await watchCsp(customer);
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (sink ? sink.server.close(resolve) : resolve()));
  });

  it('the agent sends the transcript from the desk and it arrives', async () => {
    await signIn(agent, '/agent.html', AGENT);
    await setPresence(agent, 'away');
    sessionId = await customerHandedTo(customer, agent, { name: CUSTOMER_NAME, agentName: AGENT.name, question: QUESTION });

    await chatOf(agent).getByTestId('agent-send-transcript').click();
    await agent.getByTestId('agent-email-transcript-dialog').waitFor();
    await agent.getByTestId('agent-email-transcript-address').fill(AGENT_ADDRESS);
    await agent.getByTestId('agent-email-transcript-send').click();
    await agent.getByTestId('agent-email-transcript-dialog').waitFor({ state: 'hidden' });
    await until(async () => (await agent.getByTestId('toast').allTextContents()).some((text) => text.includes(AGENT_ADDRESS)),
      'the desk to say the transcript is on its way');

    const mail = await until(() => mailTo(AGENT_ADDRESS), 'the email at the SMTP receiver', 15000);
    assert.equal(mail.from, 'support@acme.example');
    assert.match(mail.raw, /^Subject: Your conversation with Acme Support\r?$/m);
    assert.match(mail.raw, /multipart\/alternative/);
  });

  it('the customer asks for the transcript when the chat has ended, and it arrives', async () => {
    await chatOf(agent).getByTestId('agent-close').click();
    await agent.getByTestId('agent-close-dialog').waitFor();
    await agent.getByTestId('agent-close-confirm').click();
    await customer.getByTestId('sb-ended').waitFor();

    const form = customer.getByTestId('sb-transcript');
    await form.waitFor();
    await customer.getByTestId('sb-transcript-email').fill(CUSTOMER_ADDRESS);
    await screenshot(customer, '10-transcript-widget-form');
    await customer.getByTestId('sb-transcript-submit').click();
    await until(async () => (await customer.getByTestId('sb-transcript-status').textContent()).includes(CUSTOMER_ADDRESS),
      'the widget to say the transcript is on its way');
    assert.equal(await form.isHidden(), true, 'the form gives way to the confirmation');

    const mail = await until(() => mailTo(CUSTOMER_ADDRESS), 'the email at the SMTP receiver', 15000);
    assert.match(mail.raw, /^Subject: Your conversation with Acme Support\r?$/m);

    // Admins see both in the outbox, sent.
    const token = await adminToken();
    const rows = await until(async () => {
      const { data } = await rest('/api/admin/emails?status=sent&limit=200', { token });
      const mine = data.filter((row) => row.sessionId === sessionId);
      return mine.length === 2 && mine;
    }, 'both emails recorded as sent');
    assert.deepEqual(rows.map((row) => row.toAddress).sort(), [AGENT_ADDRESS, CUSTOMER_ADDRESS].sort());
    assert.ok(rows.every((row) => row.kind === 'transcript' && row.attempts >= 1));
  });

  it('the admin page lists both emails as sent, with their tries', async () => {
    const admin = await browser.newPage({ viewport: DESKTOP });
    watched.push(watch(admin, 'admin'));
    await signIn(admin, '/admin.html', ADMIN);
    const rows = admin.getByTestId('admin-email-row');
    await until(async () => {
      const texts = await rows.allTextContents();
      return [AGENT_ADDRESS, CUSTOMER_ADDRESS].every((address) => texts.some((text) => text.includes(address)));
    }, 'both emails in the admin page');
    for (const address of [AGENT_ADDRESS, CUSTOMER_ADDRESS]) {
      const row = rows.filter({ hasText: address });
      assert.equal(await row.getAttribute('data-status'), 'sent');
      assert.equal(await row.getByTestId('admin-email-attempts').textContent(), '1');
    }
    await admin.getByTestId('admin-emails-table').scrollIntoViewIfNeeded();
    await screenshot(admin, '10-transcript-admin-emails');
    await admin.close();
  });

  it('raised no page errors, dialogs or CSP violations', () => {
    assert.deepEqual(watched.flatMap((record) => [...record.dialogs, ...record.errors]), []);
    assert.deepEqual(cspViolations, []);
  });
});
