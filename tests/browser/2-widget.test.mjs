// The widget on its own: embedding on another site, isolation from the host
// page's CSS, and recovery from lost connections without losing or doubling
// anything.

import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import { BASE_URL, DESKTOP, assertContiguous, launchBrowser, until, watch, widgetMessages } from './helpers.mjs';

// A host page on another origin, with CSS that would wreck a widget living in the page's own DOM.
const HOSTILE_HTML = `<!doctype html>
<html><head><title>Acme</title>
<style>
  * { font-family: "Comic Sans MS", cursive !important; color: red !important; letter-spacing: 3px !important; }
  button { background: yellow !important; border: 5px solid lime !important; text-transform: uppercase !important; }
  div, section, ol, li { margin: 40px !important; padding: 30px !important; }
  ol li { list-style: decimal !important; }
  switchboard-widget, [data-testid] { display: none !important; }
</style></head>
<body><h1>Acme Widgets</h1><p>We sell widgets.</p>
<script src="${BASE_URL}/widget.js" defer data-title="Acme Help" data-color="#be185d" data-position="left"
        data-bot-context="pricing page"></script>
</body></html>`;

/** An HS256 customer token such as a shop that signs its users in would mint (README: "Tokens from your own website"). */
function hostToken(secret, sub, name) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({
    sub, role: 'customer', name, iss: 'switchboard', aud: 'switchboard:customer', iat: now, nbf: now - 5, exp: now + 600,
  })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const SIGNED_IN_HTML = (token) => `<!doctype html>
<html><head><title>Acme account</title></head>
<body><h1>Welcome back</h1>
<script src="${BASE_URL}/widget.js" defer data-title="Acme Help" data-token="${token}"></script>
</body></html>`;

describe('the chat widget', () => {
  let browser;
  let hostServer;
  let hostPage;
  const records = [];

  before(async () => {
    browser = await launchBrowser();
    // Another origin (another port) serving a customer's own site that embeds the widget.
    hostServer = createServer((request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      const url = new URL(request.url, 'http://host');
      response.end(url.pathname === '/signed-in' ? SIGNED_IN_HTML(url.searchParams.get('token')) : HOSTILE_HTML);
    });
    await new Promise((resolve) => hostServer.listen(0, '127.0.0.1', resolve));
    hostPage = `http://127.0.0.1:${hostServer.address().port}/`;
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => hostServer?.close(resolve));
  });

  async function newPage() {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    records.push(watch(page, 'widget page'));
    return page;
  }

  it('embeds on another site with one script tag, talks to the server it came from, and ignores the host page CSS', async () => {
    const page = await newPage();
    assert.notEqual(new URL(hostPage).origin, new URL(BASE_URL).origin);
    const apiCalls = [];
    page.on('request', (request) => {
      if (request.url().includes('/api/')) apiCalls.push(request.url());
    });
    await page.goto(hostPage);

    const launcher = page.getByTestId('sb-launcher');
    await launcher.waitFor();
    const look = await launcher.evaluate((node) => {
      const style = getComputedStyle(node);
      return { background: style.backgroundColor, border: style.borderTopWidth, width: node.getBoundingClientRect().width };
    });
    assert.equal(look.background, 'rgb(190, 24, 93)', 'the launcher has the data-color accent, not the host page yellow');
    assert.equal(look.border, '0px');
    assert.equal(look.width, 60);
    const box = await launcher.boundingBox();
    assert.ok(box.x < 100, 'data-position="left" puts the launcher on the left');

    await launcher.click();
    const title = page.getByTestId('sb-title');
    assert.equal(await title.textContent(), 'Acme Help');
    const titleStyle = await title.evaluate((node) => ({ color: getComputedStyle(node).color, font: getComputedStyle(node).fontFamily, spacing: getComputedStyle(node).letterSpacing }));
    assert.notEqual(titleStyle.color, 'rgb(255, 0, 0)', 'host colour does not leak in');
    assert.doesNotMatch(titleStyle.font, /Comic Sans/, 'host font does not leak in');
    assert.equal(titleStyle.spacing, 'normal');

    // The visitor token comes from the widget's own origin, not the host page's.
    await page.getByTestId('sb-name').fill('Cross Origin');
    await page.getByTestId('sb-start').click();
    await until(() => apiCalls.length > 0, 'a call to the server');
    assert.equal(new URL(apiCalls[0]).origin, new URL(BASE_URL).origin);
    assert.equal(new URL(apiCalls[0]).pathname, '/api/auth/visitor');
    // Whether the server allows cross-origin calls (CORS) decides what happens next: a
    // greeting, or a calm error in the widget. Either way nothing breaks.
    await until(async () => (await page.locator('[data-testid=sb-message][data-sender=bot]').count()) > 0
      || (await page.getByTestId('sb-start-error').isVisible()), 'a greeting or a clear error');
    await page.context().close();
  });

  it('uses a token minted by the host site for its signed-in user', async () => {
    // scripts/browser-tests.sh starts the server with this secret, as a shop would share it.
    const secret = process.env.SWITCHBOARD_JWT_SECRET;
    assert.ok(secret, 'SWITCHBOARD_JWT_SECRET is set by scripts/browser-tests.sh');
    const token = hostToken(secret, randomUUID(), 'Hannah Host');
    const page = await newPage();
    await page.goto(`${BASE_URL}/health`);
    const accepted = await page.evaluate((url) => new Promise((resolve) => {
      const socket = new WebSocket(url);
      socket.onopen = () => { socket.close(); resolve(true); };
      socket.onclose = () => resolve(false);
    }), `${BASE_URL.replace(/^http/, 'ws')}/ws/customer?token=${token}`);
    assert.equal(accepted, true, 'the server accepts a customer token the host site signed');
    const visitorCalls = [];
    page.on('request', (request) => { if (request.url().includes('/api/auth/visitor')) visitorCalls.push(request.url()); });
    await page.goto(`${hostPage}signed-in?token=${encodeURIComponent(token)}`);
    await page.getByTestId('sb-launcher').click();
    assert.equal(await page.getByTestId('sb-name').isVisible(), false, 'no name to ask for');
    await page.getByTestId('sb-start').click();
    const greeting = page.locator('[data-testid=sb-message][data-sender=bot]').first();
    await greeting.waitFor();
    assert.match(await greeting.getByTestId('sb-message-text').textContent(), /Hi Hannah Host!/);
    assert.deepEqual(visitorCalls, [], 'no anonymous visitor was created');
    await page.context().close();
  });

  it('reconnects by itself, resends what was not acknowledged with the same clientMsgId, and shows each message once', async () => {
    const page = await newPage();
    const sentFrames = [];
    let mode = 'pass'; // pass | drop-ack | refuse
    const sockets = [];
    await page.routeWebSocket(/\/ws\/customer/, (ws) => {
      if (mode === 'refuse') {
        ws.close({ code: 1013, reason: 'try again later' });
        return;
      }
      const server = ws.connectToServer();
      sockets.push(ws);
      ws.onMessage((message) => {
        const frame = JSON.parse(String(message));
        if (frame.event === 'customer:send_message') sentFrames.push(frame.data);
        server.send(message);
      });
      server.onMessage((message) => {
        const frame = JSON.parse(String(message));
        if (mode === 'drop-ack' && frame.event === 'message:sent') {
          // The message is stored, but its acknowledgement is lost with the connection.
          mode = 'pass';
          ws.close({ code: 1006, reason: 'network lost' }).catch(() => {});
          server.close().catch(() => {});
          return;
        }
        ws.send(message);
      });
    });

    // While "refused", the server is down for plain HTTP too. (A lost network
    // is a fault the real server cannot be made to produce; everything else
    // goes through to it.)
    await page.route('**/health', (route) => (mode === 'refuse' ? route.abort('connectionrefused') : route.continue()));

    await page.goto(`${BASE_URL}/`);
    await page.getByTestId('sb-launcher').click();
    await page.getByTestId('sb-name').fill('Flaky Network');
    await page.getByTestId('sb-start').click();
    await page.locator('[data-testid=sb-message][data-sender=bot]').first().waitFor();

    // 1. The acknowledgement is lost: after reconnecting the widget resends with the same clientMsgId.
    mode = 'drop-ack';
    await page.getByTestId('sb-input').fill('Where is my order?');
    await page.getByTestId('sb-input').press('Enter');
    await until(() => sockets.length >= 2, 'a second connection');
    await until(async () => {
      const messages = await widgetMessages(page);
      return messages.filter((m) => m.text === 'Where is my order?').length === 1
        && messages.some((m) => m.sender === 'bot' && /under Orders in your account/.test(m.text))
        && messages.every((m) => m.seq);
    }, 'the message once and the bot answer after reconnecting');
    const attempts = sentFrames.filter((frame) => frame.content === 'Where is my order?');
    assert.ok(attempts.length >= 1);
    assert.equal(new Set(attempts.map((frame) => frame.clientMsgId)).size, 1, 'every attempt used the same clientMsgId');

    // 2. Written while the server cannot be reached: queued, shown as sending, delivered on reconnect.
    mode = 'refuse';
    await sockets.at(-1).close({ code: 1001, reason: 'the server is restarting' });
    await page.locator('[data-testid=sb-panel]').waitFor();
    await page.getByTestId('sb-input').fill('Can I cancel it?');
    await page.getByTestId('sb-input').press('Enter');
    const pending = page.locator('[data-testid=sb-message][data-status=sending]');
    await pending.waitFor();
    await page.locator('[data-testid=sb-connection]:not([hidden])').waitFor();
    mode = 'pass';
    await until(async () => {
      const messages = await widgetMessages(page);
      return messages.filter((m) => m.text === 'Can I cancel it?').length === 1
        && messages.filter((m) => m.sender === 'bot').length >= 3
        && messages.every((m) => m.seq);
    }, 'the queued message delivered once after reconnecting', 20000);
    await page.locator('[data-testid=sb-connection][hidden]').waitFor({ state: 'attached' });

    const messages = await widgetMessages(page);
    assertContiguous(messages, assert, 'widget after two lost connections');
    for (const record of records) {
      assert.deepEqual(record.dialogs, []);
      assert.deepEqual(record.errors, []);
    }
    await page.context().close();
  });
});
